import { ApiError, apiHeaders, NetworkError, readProblem } from '../api/client'
import type { Message, Problem } from '../api/types'
import { readSse } from './sse'

export interface SendBody {
  content: string
  model?: string
  /** `null` explicitly asks for a new root message (editing the first message of a conversation). */
  parentMessageId?: string | null
  /** Files to attach to the conversation before this turn. */
  fileIds?: string[]
}

export interface StreamHandlers {
  onUser?(message: Message): void
  onStart?(assistantMessageId: string): void
  onDelta?(text: string): void
  onDone?(message: Message): void
  onError?(problem: Problem): void
  onReconnecting?(attempt: number, delayMs: number): void
  onReconnected?(): void
}

/**
 * How a stream ended: `done` and `error` are final events from the server; `aborted` means the
 * caller cancelled; `lost` means the connection could not be re-established (the caller should
 * reload the conversation to see what the server stored).
 */
export type StreamOutcome = 'done' | 'error' | 'aborted' | 'lost'

export interface StreamOptions {
  signal?: AbortSignal
  idempotencyKey?: string
  /** Upper bound of reconnect attempts without progress. */
  maxAttempts?: number
  /** For tests: how to wait between attempts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  fetchImpl?: typeof fetch
}

/** A v4 UUID that also works outside secure contexts (crypto.randomUUID needs HTTPS or localhost). */
export function newId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

export function backoffDelay(attempt: number): number {
  return Math.min(8000, 400 * 2 ** (attempt - 1))
}

/** Waits `ms`, but returns early when the browser comes back online, and rejects on abort. */
export function waitForRetry(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const done = () => {
      clearTimeout(timer)
      window.removeEventListener('online', done)
      signal?.removeEventListener('abort', aborted)
      resolve()
    }
    const aborted = () => {
      clearTimeout(timer)
      window.removeEventListener('online', done)
      reject(signal?.reason)
    }
    const timer = setTimeout(done, ms)
    window.addEventListener('online', done)
    signal?.addEventListener('abort', aborted, { once: true })
  })
}

function parseJson<T>(data: string): T | undefined {
  try {
    return JSON.parse(data) as T
  } catch {
    return undefined
  }
}

interface Session {
  consume(response: Response): Promise<void>
  resume(first: { immediate: boolean }): Promise<StreamOutcome>
  readonly outcome: StreamOutcome | undefined
  readonly assistantId: string | undefined
}

function messagesUrl(conversationId: string): string {
  return `/api/conversations/${encodeURIComponent(conversationId)}/messages`
}

/**
 * The reading side shared by a new message and a followed one. Every delta id is remembered, so
 * a replay that overlaps what was already shown is skipped instead of duplicated.
 */
function createSession(conversationId: string, handlers: StreamHandlers, options: StreamOptions, knownAssistantId?: string): Session {
  const doFetch = options.fetchImpl ?? fetch
  const sleep = options.sleep ?? waitForRetry
  // About a minute and a half of retries: long enough for a replica to restart or be replaced.
  const maxAttempts = options.maxAttempts ?? 15
  const signal = options.signal
  let assistantId = knownAssistantId
  let lastEventId = ''
  const seen = new Set<string>()
  let outcome: StreamOutcome | undefined
  let received = 0

  async function consume(response: Response): Promise<void> {
    if (!response.body) return
    for await (const ev of readSse(response.body)) {
      received++
      if (ev.id) lastEventId = ev.id
      switch (ev.event) {
        case 'user': {
          const m = parseJson<Message>(ev.data)
          if (m) handlers.onUser?.(m)
          break
        }
        case 'start': {
          const s = parseJson<{ messageId: string }>(ev.data)
          if (s?.messageId && !assistantId) {
            assistantId = s.messageId
            handlers.onStart?.(s.messageId)
          }
          break
        }
        case 'delta': {
          if (ev.id) {
            if (seen.has(ev.id)) break
            seen.add(ev.id)
          }
          const d = parseJson<{ text?: string }>(ev.data)
          if (d?.text) handlers.onDelta?.(d.text)
          break
        }
        case 'done': {
          const m = parseJson<Message>(ev.data)
          if (m) {
            if (!assistantId) {
              assistantId = m.id
              handlers.onStart?.(m.id)
            }
            handlers.onDone?.(m)
          }
          outcome = 'done'
          return
        }
        case 'error': {
          handlers.onError?.(parseJson<Problem>(ev.data) ?? { title: 'The answer failed.' })
          outcome = 'error'
          return
        }
        default:
          break
      }
    }
  }

  async function resume(first: { immediate: boolean }): Promise<StreamOutcome> {
    if (!assistantId) return 'lost'
    let attempt = 0
    let immediate = first.immediate
    while (attempt < maxAttempts) {
      attempt++
      if (!immediate) {
        const delay = backoffDelay(attempt)
        handlers.onReconnecting?.(attempt, delay)
        try {
          await sleep(delay, signal)
        } catch {
          return 'aborted'
        }
      }
      immediate = false
      const before = received
      try {
        const headers = apiHeaders('GET', { Accept: 'text/event-stream' })
        if (lastEventId) headers.set('Last-Event-ID', lastEventId)
        const resumed = await doFetch(`${messagesUrl(conversationId)}/${encodeURIComponent(assistantId)}/events`, {
          method: 'GET',
          headers,
          credentials: 'same-origin',
          signal,
          cache: 'no-store',
        })
        if (!resumed.ok) {
          // Server errors may be a replica restarting: retry. Anything else will not get better.
          if (resumed.status >= 500 || resumed.status === 429) continue
          return 'lost'
        }
        handlers.onReconnected?.()
        await consume(resumed)
        if (outcome) return outcome
      } catch {
        if (signal?.aborted) return 'aborted'
      }
      if (signal?.aborted) return 'aborted'
      // A connection that delivered events counts as progress: only consecutive failures give up.
      if (received > before) attempt = 0
    }
    return 'lost'
  }

  return {
    consume,
    resume,
    get outcome() {
      return outcome
    },
    get assistantId() {
      return assistantId
    },
  }
}

/**
 * Sends a message and follows the answer's event stream. When the connection breaks after the
 * assistant message id is known, it reconnects to the message's event log with Last-Event-ID and
 * skips any delta it already applied, so the text is neither duplicated nor missing.
 */
export async function streamMessage(
  conversationId: string,
  body: SendBody,
  handlers: StreamHandlers,
  options: StreamOptions = {},
): Promise<StreamOutcome> {
  const doFetch = options.fetchImpl ?? fetch
  const sleep = options.sleep ?? waitForRetry
  const signal = options.signal
  const session = createSession(conversationId, handlers, options)

  // A replica that is shutting down answers 503 "draining" with Retry-After: the same request with
  // the same Idempotency-Key is safe to repeat, and the load balancer sends it to another replica.
  let response: Response
  for (let attempt = 1; ; attempt++) {
    try {
      response = await doFetch(messagesUrl(conversationId), {
        method: 'POST',
        headers: apiHeaders('POST', {
          Accept: 'text/event-stream',
          ...(options.idempotencyKey ? { 'Idempotency-Key': options.idempotencyKey } : {}),
        }, true),
        body: JSON.stringify(body),
        credentials: 'same-origin',
        signal,
      })
    } catch (error) {
      if (signal?.aborted) return 'aborted'
      throw new NetworkError(error)
    }
    if (response.ok) break
    const problem = await readProblem(response)
    const retryable = response.status === 503 && options.idempotencyKey && attempt < 4
    if (!retryable) throw new ApiError(response.status, problem)
    const retryAfter = Number(response.headers.get('Retry-After'))
    try {
      await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 5) * 1000 : 1000, signal)
    } catch {
      return 'aborted'
    }
  }

  if (!(response.headers.get('Content-Type') ?? '').includes('text/event-stream')) {
    // A server (or proxy) that does not stream answers with the finished messages as JSON.
    const result = (await response.json()) as { userMessage?: Message; assistantMessage?: Message }
    if (result.userMessage) handlers.onUser?.(result.userMessage)
    if (result.assistantMessage) {
      handlers.onStart?.(result.assistantMessage.id)
      handlers.onDone?.(result.assistantMessage)
    }
    return 'done'
  }

  try {
    await session.consume(response)
  } catch {
    if (signal?.aborted) return 'aborted'
  }
  if (session.outcome) return session.outcome
  if (signal?.aborted) return 'aborted'
  return session.resume({ immediate: false })
}

/**
 * Follows an answer that is still being generated (found after a page reload): its event log is
 * replayed from the start, so the caller should clear the text it shows first.
 */
export function followMessage(
  conversationId: string,
  assistantMessageId: string,
  handlers: StreamHandlers,
  options: StreamOptions = {},
): Promise<StreamOutcome> {
  return createSession(conversationId, handlers, options, assistantMessageId).resume({ immediate: true })
}
