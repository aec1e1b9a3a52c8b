import type { Problem } from './types'

/** An HTTP failure described in words a person can act on. */
export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem

  constructor(status: number, problem: Problem) {
    super(describeProblem(status, problem))
    this.name = 'ApiError'
    this.status = status
    this.problem = problem
  }
}

/** The network itself failed (offline, server down, connection reset). */
export class NetworkError extends Error {
  constructor(cause?: unknown) {
    super('Cannot reach the server. Check your connection; your text is kept, so you can send it again.')
    this.name = 'NetworkError'
    this.cause = cause
  }
}

export function describeProblem(status: number, problem: Problem): string {
  const fieldErrors = problem.errors ? Object.values(problem.errors).flat().filter(Boolean) : []
  const main = problem.detail || fieldErrors.join(' ') || problem.title || ''
  const advice = adviceFor(status)
  if (main && advice) return `${main} ${advice}`
  return main || advice || `The server answered ${status}.`
}

function adviceFor(status: number): string {
  switch (status) {
    case 401:
      return 'Please sign in again.'
    case 403:
      return 'Your account is not allowed to do this.'
    case 404:
      return 'It may have been deleted; reload the page.'
    case 413:
      return 'Shorten the message and try again.'
    case 429:
      return 'Too many requests; wait a moment and try again.'
    case 500:
    case 502:
    case 503:
    case 504:
      return 'The service is having trouble; try again in a moment.'
    default:
      return ''
  }
}

export async function readProblem(response: Response): Promise<Problem> {
  try {
    const text = await response.text()
    if (!text) return { status: response.status, title: response.statusText }
    const parsed: unknown = JSON.parse(text)
    if (parsed && typeof parsed === 'object') return parsed as Problem
  } catch {
    // Not JSON (a proxy error page, for example): fall back to the status line.
  }
  return { status: response.status, title: response.statusText }
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface RequestOptions {
  body?: unknown
  headers?: Record<string, string>
  signal?: AbortSignal
}

/** Headers every request carries; state-changing ones add the CSRF marker the server requires. */
export function apiHeaders(method: string, extra?: Record<string, string>, hasBody = false): Headers {
  const headers = new Headers(extra)
  if (!headers.has('Accept')) headers.set('Accept', 'application/json')
  if (hasBody) headers.set('Content-Type', 'application/json')
  if (method !== 'GET' && method !== 'HEAD') headers.set('X-Requested-With', 'XMLHttpRequest')
  return headers
}

let onUnauthorized: (() => void) | undefined

/** Called when any request answers 401, so the app can return to the sign-in screen. */
export function setUnauthorizedHandler(handler: (() => void) | undefined) {
  onUnauthorized = handler
}

export async function apiFetch(method: Method, url: string, options: RequestOptions = {}): Promise<Response> {
  const hasBody = options.body !== undefined
  let response: Response
  try {
    response = await fetch(url, {
      method,
      headers: apiHeaders(method, options.headers, hasBody),
      body: hasBody ? JSON.stringify(options.body) : undefined,
      credentials: 'same-origin',
      signal: options.signal,
    })
  } catch (error) {
    if (options.signal?.aborted) throw error
    throw new NetworkError(error)
  }
  if (!response.ok) {
    const problem = await readProblem(response)
    if (response.status === 401 && !url.startsWith('/api/auth/')) onUnauthorized?.()
    throw new ApiError(response.status, problem)
  }
  return response
}

export async function api<T>(method: Method, url: string, options: RequestOptions = {}): Promise<T> {
  const response = await apiFetch(method, url, options)
  if (response.status === 204) return undefined as T
  const text = await response.text()
  return (text ? JSON.parse(text) : undefined) as T
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError || error instanceof NetworkError) return error.message
  if (error instanceof Error) return error.message
  return String(error)
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 404 || error.status === 405)
}
