import { describe, expect, it } from 'vitest'
import { streamMessage } from './chatStream'

const enc = new TextEncoder()

/** A response whose body sends `parts` and then either ends or fails like a dropped connection. */
function sseResponse(parts: string[], breakAfter = false): Response {
  let i = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) controller.enqueue(enc.encode(parts[i++]))
      else if (breakAfter) controller.error(new TypeError('network error'))
      else controller.close()
    },
  })
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
}

const delta = (id: string, text: string) => `event: delta\nid: ${id}\ndata: ${JSON.stringify({ text })}\n\n`
const head =
  'event: user\ndata: {"id":"u1","role":"user","content":"one two three","status":"complete","parentMessageId":null,"createdAt":"2026-01-01T00:00:00Z"}\n\n' +
  'event: start\ndata: {"messageId":"a1","conversationId":"c1"}\n\n'
const done = 'event: done\nid: 4\ndata: {"id":"a1","role":"assistant","content":"one two three","status":"complete","parentMessageId":"u1","createdAt":"2026-01-01T00:00:01Z"}\n\n'

describe('streamMessage', () => {
  it('resumes after a dropped connection with Last-Event-ID and does not repeat text', async () => {
    const calls: { url: string; lastEventId: string | null; xrw: string | null }[] = []
    const fetchImpl = (async (url: string, init: RequestInit) => {
      const headers = new Headers(init.headers)
      calls.push({ url, lastEventId: headers.get('Last-Event-ID'), xrw: headers.get('X-Requested-With') })
      if (calls.length === 1) return sseResponse([head, delta('1', 'one'), delta('2', ' two').slice(0, 20)], true)
      // The server replays one delta the client already has: it must be skipped.
      return sseResponse([delta('1', 'one'), delta('2', ' two'), delta('3', ' three'), done])
    }) as unknown as typeof fetch

    let text = ''
    const reconnects: number[] = []
    const outcome = await streamMessage('c1', { content: 'one two three' }, {
      onDelta: (t) => (text += t),
      onReconnecting: (attempt) => reconnects.push(attempt),
    }, { fetchImpl, sleep: async () => {} })

    expect(outcome).toBe('done')
    expect(text).toBe('one two three')
    expect(reconnects).toEqual([1])
    expect(calls[0]).toEqual({ url: '/api/conversations/c1/messages', lastEventId: null, xrw: 'XMLHttpRequest' })
    expect(calls[1]).toEqual({ url: '/api/conversations/c1/messages/a1/events', lastEventId: '1', xrw: null })
  })

  it('gives up after repeated failures and reports the stream as lost', async () => {
    let n = 0
    const fetchImpl = (async () => {
      n++
      if (n === 1) return sseResponse([head, delta('1', 'one')], true)
      throw new TypeError('offline')
    }) as unknown as typeof fetch
    const outcome = await streamMessage('c1', { content: 'x' }, {}, { fetchImpl, sleep: async () => {}, maxAttempts: 3 })
    expect(outcome).toBe('lost')
    expect(n).toBe(4)
  })

  it('reports an error event with its problem', async () => {
    const fetchImpl = (async () =>
      sseResponse([head, 'event: error\ndata: {"title":"Provider failed","detail":"Upstream timed out","status":502}\n\n'])) as unknown as typeof fetch
    let detail = ''
    const outcome = await streamMessage('c1', { content: 'x' }, { onError: (p) => (detail = p.detail ?? '') }, { fetchImpl })
    expect(outcome).toBe('error')
    expect(detail).toBe('Upstream timed out')
  })

  it('turns a problem response into an error naming the detail', async () => {
    const fetchImpl = (async () =>
      new Response(JSON.stringify({ title: 'Bad', status: 400, detail: 'Unknown model "x/y".' }), {
        status: 400,
        headers: { 'Content-Type': 'application/problem+json' },
      })) as unknown as typeof fetch
    await expect(streamMessage('c1', { content: 'x', model: 'x/y' }, {}, { fetchImpl })).rejects.toThrow('Unknown model "x/y".')
  })

  it('repeats the request with the same Idempotency-Key while a replica is draining', async () => {
    const keys: (string | null)[] = []
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      keys.push(new Headers(init.headers).get('Idempotency-Key'))
      if (keys.length === 1) {
        return new Response(JSON.stringify({ status: 503, code: 'draining', detail: 'This server is restarting' }), {
          status: 503,
          headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '1' },
        })
      }
      return sseResponse([head, delta('1', 'one two three'), done])
    }) as unknown as typeof fetch
    const waits: number[] = []
    let text = ''
    const outcome = await streamMessage('c1', { content: 'one two three' }, { onDelta: (t) => (text += t) }, {
      fetchImpl,
      idempotencyKey: 'key-1',
      sleep: async (ms) => void waits.push(ms),
    })
    expect(outcome).toBe('done')
    expect(text).toBe('one two three')
    expect(keys).toEqual(['key-1', 'key-1'])
    expect(waits).toEqual([1000])
  })

  it('reports an interrupted answer with the text the server kept', async () => {
    const fetchImpl = (async () =>
      sseResponse([
        head,
        delta('3', 'one'),
        'event: error\ndata: {"status":503,"code":"interrupted","messageId":"a1","messageStatus":"interrupted","content":"one"}\n\n',
      ])) as unknown as typeof fetch
    let status = ''
    const outcome = await streamMessage('c1', { content: 'x' }, { onError: (p) => (status = `${p.messageStatus}:${p.content}`) }, { fetchImpl })
    expect(outcome).toBe('error')
    expect(status).toBe('interrupted:one')
  })
})
