import type { Message } from '../api/types'

/**
 * Long conversations are read a page at a time: the newest page when the conversation opens, and
 * earlier pages when the reader asks for them. These merge the pages into the one flat list
 * (oldest first) that the message tree is built from.
 */
export const MESSAGE_PAGE_SIZE = 100

/** Compared as instants: the JSON text drops trailing zeros of the fraction, so its string order is not time order. */
function time(m: Message): number {
  const t = Date.parse(m.createdAt)
  return Number.isNaN(t) ? 0 : t
}

/** Both lists as one, oldest first; for a message in both, the copy in `newer` (read later) wins. */
export function mergeMessages(older: readonly Message[], newer: readonly Message[]): Message[] {
  const byId = new Map<string, Message>()
  for (const m of older) byId.set(m.id, m)
  for (const m of newer) byId.set(m.id, m)
  // Array.prototype.sort is stable: messages within the same millisecond keep the server's order.
  return [...byId.values()].sort((a, b) => time(a) - time(b))
}

/**
 * After the newest page was read again: that page, plus the earlier pages already on screen
 * (messages older than the page). Anything newer that the server does not list is dropped.
 */
export function refreshNewest(current: readonly Message[], page: readonly Message[], pageIsComplete: boolean): Message[] {
  if (pageIsComplete || page.length === 0) return [...page]
  const oldest = Math.min(...page.map(time))
  const inPage = new Set(page.map((m) => m.id))
  return mergeMessages(
    current.filter((m) => !inPage.has(m.id) && time(m) < oldest),
    page,
  )
}

export function conversationPageUrl(conversationId: string, cursor?: string | null): string {
  const params = new URLSearchParams({ limit: String(MESSAGE_PAGE_SIZE) })
  if (cursor) params.set('cursor', cursor)
  return `/api/conversations/${encodeURIComponent(conversationId)}?${params}`
}
