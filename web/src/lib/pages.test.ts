import { describe, expect, it } from 'vitest'
import type { Message } from '../api/types'
import { conversationPageUrl, mergeMessages, refreshNewest } from './pages'

function msg(id: string, createdAt: string, content = id): Message {
  return { id, role: 'user', content, status: 'complete', parentMessageId: null, createdAt }
}

describe('conversation pages', () => {
  it('puts an earlier page before what is shown, keeping the shown copies', () => {
    const shown = [msg('c', '2026-01-01T00:00:03Z'), msg('d', '2026-01-01T00:00:04Z', 'streaming text')]
    const earlier = [msg('a', '2026-01-01T00:00:01Z'), msg('b', '2026-01-01T00:00:02Z'), msg('d', '2026-01-01T00:00:04Z', 'old')]
    const merged = mergeMessages(earlier, shown)
    expect(merged.map((m) => m.id)).toEqual(['a', 'b', 'c', 'd'])
    expect(merged[3].content).toBe('streaming text')
  })

  it('orders by instant, not by the text of the timestamp', () => {
    // ".12Z" is later than ".1Z" but sorts before it as text.
    const merged = mergeMessages([msg('late', '2026-01-01T00:00:01.12Z')], [msg('early', '2026-01-01T00:00:01.1Z')])
    expect(merged.map((m) => m.id)).toEqual(['early', 'late'])
  })

  it('keeps earlier pages when the newest page is read again, and drops what the server no longer lists', () => {
    const current = [
      msg('a', '2026-01-01T00:00:01Z'),
      msg('b', '2026-01-01T00:00:02Z'),
      msg('c', '2026-01-01T00:00:03Z'),
      msg('temp', '2026-01-01T00:00:05Z'),
    ]
    const page = [msg('c', '2026-01-01T00:00:03Z'), msg('d', '2026-01-01T00:00:04Z')]
    expect(refreshNewest(current, page, false).map((m) => m.id)).toEqual(['a', 'b', 'c', 'd'])
    expect(refreshNewest(current, page, true).map((m) => m.id)).toEqual(['c', 'd'])
  })

  it('asks for a page of the newest messages, then for the ones before a cursor', () => {
    expect(conversationPageUrl('c 1')).toBe('/api/conversations/c%201?limit=100')
    expect(conversationPageUrl('c1', 'abc=')).toBe('/api/conversations/c1?limit=100&cursor=abc%3D')
  })
})
