import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent, type ReactNode } from 'react'
import type { SavedPrompt } from '../api/types'
import { filterPrompts, slashQuery, useSavedPrompts } from '../lib/prompts'

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
  const listId = useId()
  const ref = useRef<HTMLTextAreaElement>(null)
  const prompts = useSavedPrompts()
  /** The highlighted option, for the query it was chosen under (a new query starts at the top). */
  const [pick, setPick] = useState({ query: '', index: 0 })
  /** The draft at which the picker was closed with Esc: it stays closed until the draft is edited. */
  const [dismissedAt, setDismissedAt] = useState<string | null>(null)
  const query = slashQuery(value)
  const picking = query !== null && dismissedAt !== value
  const matches = picking ? filterPrompts(prompts, query) : []
  const open = matches.length > 0
  const activeIndex = pick.query === query ? Math.min(pick.index, Math.max(0, matches.length - 1)) : 0
  const setActive = (index: number) => setPick({ query: query ?? '', index })

  useEffect(() => {
    if (!streaming) ref.current?.focus()
  }, [streaming])

  function choose(p: SavedPrompt) {
    onChange(p.text)
    setDismissedAt(null)
    const el = ref.current
    if (el) {
      el.focus()
      // After React has put the text in, the caret goes to its end, ready to go on typing.
      window.requestAnimationFrame(() => el.setSelectionRange(el.value.length, el.value.length))
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault()
    if (!streaming && value.trim()) onSend()
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (open && !e.nativeEvent.isComposing) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault()
        const step = e.key === 'ArrowDown' ? 1 : -1
        setActive((activeIndex + step + matches.length) % matches.length)
        return
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault()
        choose(matches[activeIndex])
        return
      }
      if (e.key === 'Escape') {
        e.preventDefault()
        e.stopPropagation()
        setDismissedAt(value)
        return
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault()
      if (!streaming && value.trim()) onSend()
    } else if (e.key === 'Escape' && streaming) {
      e.preventDefault()
      onStop()
    }
  }

  const optionId = (i: number) => `${listId}-option-${i}`
  const rows = Math.min(8, Math.max(1, value.split('\n').length))
  return (
    <form className="composer" onSubmit={submit}>
      {attachments && <div className="composer-attachments">{attachments}</div>}
      {open && (
        <ul id={listId} className="prompt-picker" role="listbox" aria-label="Saved prompts">
          {matches.map((p, i) => (
            <li
              key={p.id}
              id={optionId(i)}
              role="option"
              aria-selected={i === activeIndex}
              className={i === activeIndex ? 'active' : undefined}
              onMouseDown={(e) => e.preventDefault()}
              onMouseEnter={() => setActive(i)}
              onClick={() => choose(p)}
            >
              <span className="prompt-picker-title">{p.title}</span>
              {p.command && <code>/{p.command}</code>}
              <span className="prompt-picker-text muted">{p.text}</span>
            </li>
          ))}
        </ul>
      )}
      {picking && !open && prompts.length === 0 && (
        <p className="prompt-picker empty muted">
          No saved prompts yet: add some under <a href="#/prompts">Saved prompts</a>.
        </p>
      )}
      <label htmlFor={id} className="sr-only">
        Message
      </label>
      <textarea
        id={id}
        ref={ref}
        rows={rows}
        placeholder="Send a message (/ for saved prompts)"
        aria-describedby={hintId}
        aria-autocomplete="list"
        aria-controls={open ? listId : undefined}
        aria-activedescendant={open ? optionId(activeIndex) : undefined}
        value={value}
        disabled={disabled}
        onChange={(e) => {
          // Any edit after Esc may open the picker again.
          setDismissedAt(null)
          onChange(e.target.value)
        }}
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
        <span>Enter to send · Shift+Enter for a new line · / for saved prompts · Esc to stop</span>
      </p>
    </form>
  )
}
