import { useEffect, useId, useRef, type FormEvent, type KeyboardEvent, type ReactNode } from 'react'

interface Props {
  value: string
  onChange: (v: string) => void
  onSend: () => void
  onStop: () => void
  streaming: boolean
  disabled?: boolean
  status?: string
  /** Controls shown above the text field (the attach-files control). */
  attachments?: ReactNode
}

export function Composer({ value, onChange, onSend, onStop, streaming, disabled, status, attachments }: Props) {
  const id = useId()
  const hintId = useId()
  const ref = useRef<HTMLTextAreaElement>(null)

  useEffect(() => {
    if (!streaming) ref.current?.focus()
  }, [streaming])

  function submit(e: FormEvent) {
    e.preventDefault()
    if (!streaming && value.trim()) onSend()
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault()
      if (!streaming && value.trim()) onSend()
    } else if (e.key === 'Escape' && streaming) {
      e.preventDefault()
      onStop()
    }
  }

  const rows = Math.min(8, Math.max(1, value.split('\n').length))
  return (
    <form className="composer" onSubmit={submit}>
      {attachments && <div className="composer-attachments">{attachments}</div>}
      <label htmlFor={id} className="sr-only">
        Message
      </label>
      <textarea
        id={id}
        ref={ref}
        rows={rows}
        placeholder="Send a message"
        aria-describedby={hintId}
        value={value}
        disabled={disabled}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={onKeyDown}
      />
      {streaming ? (
        <button type="button" className="stop" onClick={onStop}>
          Stop
        </button>
      ) : (
        <button type="submit" className="primary" disabled={disabled || !value.trim()}>
          Send
        </button>
      )}
      <p id={hintId} className="composer-hint">
        {status ? <span className="composer-status">{status}</span> : null}
        <span>Enter to send · Shift+Enter for a new line · Esc to stop</span>
      </p>
    </form>
  )
}
