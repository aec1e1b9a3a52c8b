import { apiHeaders, ApiError, NetworkError, readProblem } from './client'
import type { StoredFile } from './types'

/** Uploads one document (multipart, field `file`); the server processes it in the background. */
export async function uploadFile(file: File): Promise<StoredFile> {
  const form = new FormData()
  form.append('file', file, file.name)
  // No Content-Type of our own: the browser sets multipart/form-data with its boundary.
  const headers = apiHeaders('POST')
  let response: Response
  try {
    response = await fetch('/api/files', { method: 'POST', headers, body: form, credentials: 'same-origin' })
  } catch (error) {
    throw new NetworkError(error)
  }
  if (!response.ok) throw new ApiError(response.status, await readProblem(response))
  return (await response.json()) as StoredFile
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`
}

export const acceptedTypes = '.txt,.md,.markdown,.pdf,.docx,text/plain,text/markdown,application/pdf,application/vnd.openxmlformats-officedocument.wordprocessingml.document'
