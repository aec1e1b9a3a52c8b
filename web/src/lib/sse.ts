/**
 * A Server-Sent Events parser that follows the WHATWG event-stream rules and is fed arbitrary
 * chunks. EventSource cannot be used because sending a message is a POST with a body, so the
 * stream arrives through fetch and may be cut anywhere: inside a line, between CR and LF, or
 * inside a multi-byte character.
 */
export interface SseEvent {
  /** The `event:` field, `message` when absent. */
  event: string
  /** The `data:` lines joined with "\n". */
  data: string
  /** The `id:` of this event, or undefined when the event carried none. */
  id?: string
  /** The last event id seen on the stream so far (what a reconnect sends as Last-Event-ID). */
  lastEventId: string
  /** A `retry:` value in milliseconds, when the event carried one. */
  retry?: number
}

export class SseParser {
  private buffer = ''
  // A chunk that ends in CR may be followed by LF in the next chunk: that pair is one line break.
  private skipLeadingLf = false
  private eventType = ''
  private dataLines: string[] = []
  private hasData = false
  private eventId: string | undefined
  private retry: number | undefined
  lastEventId = ''

  /** Feeds decoded text and returns the events completed by it. */
  feed(text: string): SseEvent[] {
    const events: SseEvent[] = []
    let chunk = text
    if (this.skipLeadingLf && chunk.length > 0) {
      if (chunk[0] === '\n') chunk = chunk.slice(1)
      this.skipLeadingLf = false
    }
    this.buffer += chunk
    let start = 0
    for (let i = 0; i < this.buffer.length; i++) {
      const ch = this.buffer[i]
      if (ch !== '\n' && ch !== '\r') continue
      const line = this.buffer.slice(start, i)
      if (ch === '\r') {
        if (i + 1 < this.buffer.length) {
          if (this.buffer[i + 1] === '\n') i++
        } else {
          this.skipLeadingLf = true
        }
      }
      start = i + 1
      const event = this.processLine(line)
      if (event) events.push(event)
    }
    this.buffer = this.buffer.slice(start)
    return events
  }

  /** Ends the stream: an incomplete trailing event is discarded, as the specification says. */
  end(): SseEvent[] {
    this.buffer = ''
    this.resetEvent()
    return []
  }

  private processLine(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return undefined
    const colon = line.indexOf(':')
    let field: string
    let value: string
    if (colon === -1) {
      field = line
      value = ''
    } else {
      field = line.slice(0, colon)
      value = line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
    }
    switch (field) {
      case 'event':
        this.eventType = value
        break
      case 'data':
        this.dataLines.push(value)
        this.hasData = true
        break
      case 'id':
        if (!value.includes('\u0000')) {
          this.lastEventId = value
          this.eventId = value
        }
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value)
        break
      default:
        break
    }
    return undefined
  }

  private dispatch(): SseEvent | undefined {
    const hasData = this.hasData
    const event: SseEvent = {
      event: this.eventType || 'message',
      data: this.dataLines.join('\n'),
      id: this.eventId,
      lastEventId: this.lastEventId,
      retry: this.retry,
    }
    this.resetEvent()
    // An event without data lines is not dispatched (only its id and retry take effect).
    return hasData ? event : undefined
  }

  private resetEvent() {
    this.eventType = ''
    this.dataLines = []
    this.hasData = false
    this.eventId = undefined
    this.retry = undefined
  }
}

/** Reads a fetch body as SSE events; bytes are decoded as UTF-8 across chunk boundaries. */
export async function* readSse(body: ReadableStream<Uint8Array>, parser = new SseParser()): AsyncGenerator<SseEvent> {
  const reader = body.getReader()
  const decoder = new TextDecoder('utf-8')
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      yield* parser.feed(decoder.decode(value, { stream: true }))
    }
    yield* parser.feed(decoder.decode())
    parser.end()
  } finally {
    // Also reached when the consumer stops early: cancelling closes the underlying connection.
    reader.cancel().catch(() => undefined)
  }
}
