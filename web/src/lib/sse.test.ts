import { describe, expect, it } from 'vitest'
import { readSse, SseParser, type SseEvent } from './sse'

const wire =
  'event: user\ndata: {"id":"u1","content":"hi"}\n\n' +
  'event: start\ndata: {"messageId":"a1"}\n\n' +
  'event: delta\nid: 7-1\ndata: {"text":"Hello"}\n\n' +
  ': keep-alive\n\n' +
  'event: delta\nid: 7-2\ndata: {"text":" world"}\n\n' +
  'event: done\nid: 7-3\ndata: {"id":"a1","status":"complete"}\n\n'

function feedAll(chunks: string[]): SseEvent[] {
  const parser = new SseParser()
  return chunks.flatMap((c) => parser.feed(c))
}

function summary(events: SseEvent[]) {
  return events.map((e) => `${e.event}|${e.id ?? ''}|${e.data}`)
}

describe('SseParser', () => {
  it('parses named events, ids and data, and skips comments', () => {
    const events = feedAll([wire])
    expect(summary(events)).toEqual([
      'user||{"id":"u1","content":"hi"}',
      'start||{"messageId":"a1"}',
      'delta|7-1|{"text":"Hello"}',
      'delta|7-2|{"text":" world"}',
      'done|7-3|{"id":"a1","status":"complete"}',
    ])
    expect(events.at(-1)?.lastEventId).toBe('7-3')
  })

  it('gives the same events whatever the chunk boundaries are', () => {
    const expected = summary(feedAll([wire]))
    for (let size = 1; size <= 17; size++) {
      const chunks: string[] = []
      for (let i = 0; i < wire.length; i += size) chunks.push(wire.slice(i, i + size))
      expect(summary(feedAll(chunks)), `chunk size ${size}`).toEqual(expected)
    }
    // Every single split point, in two pieces.
    for (let cut = 0; cut <= wire.length; cut++) {
      expect(summary(feedAll([wire.slice(0, cut), wire.slice(cut)])), `cut at ${cut}`).toEqual(expected)
    }
  })

  it('accepts CRLF and lone CR line endings, including a CRLF split across chunks', () => {
    const crlf = wire.replace(/\n/g, '\r\n')
    const cr = wire.replace(/\n/g, '\r')
    const expected = summary(feedAll([wire]))
    expect(summary(feedAll([crlf]))).toEqual(expected)
    expect(summary(feedAll([cr]))).toEqual(expected)
    const parser = new SseParser()
    const events = [
      ...parser.feed('event: delta\r'),
      ...parser.feed('\nid: 1\r'),
      ...parser.feed('\ndata: {"text":"a"}\r'),
      ...parser.feed('\n\r'),
      ...parser.feed('\n'),
    ]
    expect(summary(events)).toEqual(['delta|1|{"text":"a"}'])
  })

  it('joins multi-line data, keeps a value without the optional space, and defaults the event name', () => {
    const events = feedAll(['data:first\ndata: second\ndata\n\n'])
    expect(events).toHaveLength(1)
    expect(events[0].event).toBe('message')
    expect(events[0].data).toBe('first\nsecond\n')
  })

  it('keeps the last id across events and ignores ids containing NUL', () => {
    const events = feedAll(['id: a\ndata: 1\n\n', 'data: 2\n\n', 'id: b\u0000c\ndata: 3\n\n'])
    expect(events.map((e) => e.lastEventId)).toEqual(['a', 'a', 'a'])
    expect(events.map((e) => e.id)).toEqual(['a', undefined, undefined])
  })

  it('does not dispatch an event that was not terminated by a blank line', () => {
    const parser = new SseParser()
    expect(parser.feed('event: delta\nid: 9\ndata: {"text":"cut"}\n')).toEqual([])
    expect(parser.end()).toEqual([])
  })

  it('ignores comment-only blocks and unknown fields, and reads retry', () => {
    const events = feedAll([': hello\n: there\n\nfoo: bar\nretry: 1500\ndata: x\n\n'])
    expect(events).toHaveLength(1)
    expect(events[0].retry).toBe(1500)
    expect(events[0].data).toBe('x')
  })
})

describe('readSse', () => {
  it('decodes UTF-8 split inside a multi-byte character', async () => {
    const bytes = new TextEncoder().encode('event: delta\nid: 1\ndata: {"text":"héllo 🌍"}\n\n')
    const cutInsideEmoji = bytes.length - 6
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, cutInsideEmoji))
        controller.enqueue(bytes.slice(cutInsideEmoji))
        controller.close()
      },
    })
    const events: SseEvent[] = []
    for await (const e of readSse(body)) events.push(e)
    expect(events).toHaveLength(1)
    expect(JSON.parse(events[0].data).text).toBe('héllo 🌍')
  })

  it('surfaces a broken connection as an error after the events that arrived complete', async () => {
    let step = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        step++
        if (step === 1) controller.enqueue(new TextEncoder().encode('event: delta\nid: 1\ndata: {"text":"a"}\n\nevent: delta\nid: 2\nda'))
        else controller.error(new TypeError('network error'))
      },
    })
    const seen: string[] = []
    await expect(async () => {
      for await (const e of readSse(body)) seen.push(e.id ?? '')
    }).rejects.toThrow('network error')
    expect(seen).toEqual(['1'])
  })
})
