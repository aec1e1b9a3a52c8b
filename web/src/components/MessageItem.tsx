import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react'
import type { Message, Rating } from '../api/types'
import { formatNumber, formatUsd } from '../lib/format'
import type { PathEntry } from '../lib/tree'
import { Citations } from './Citations'
import { ThumbDownIcon, ThumbUpIcon } from './Icons'
import { copyText, Markdown } from './Markdown'

interface Props {
  entry: PathEntry
  busy: boolean
  reconnecting: boolean
  onSwitchBranch: (sibling: Message) => void
  onEdit: (message: Message, content: string) => void
  onRegenerate: (message: Message) => void
  onContinue: (message: Message) => void
  /** Rates an answer (null takes the rating back); resolves once the server stored it. */
  onRate?: (message: Message, rating: Rating | null, comment?: string) => Promise<void>
}

const statusText: Partial<Record<Message['status'], string>> = {
  stopped: 'Stopped',
  interrupted: 'Interrupted',
  failed: 'Failed',
}

export function MessageItem({ entry, busy, reconnecting, onSwitchBranch, onEdit, onRegenerate, onContinue, onRate }: Props) {
  const { message, index, siblings } = entry
  const [editing, setEditing] = useState(false)
  const [draft, setDraft] = useState(message.content)
  const [copied, setCopied] = useState(false)
  const editId = useId()
  const editRef = useRef<HTMLTextAreaElement>(null)
  const isUser = message.role === 'user'
  const streaming = message.status === 'streaming'
  const [commenting, setCommenting] = useState(false)
  const [comment, setComment] = useState('')
  const [rating, setRating] = useState(false)
  const commentId = useId()
  const feedback = message.feedback ?? null
  // Answers the server has not confirmed yet (temporary ids) cannot be rated.
  const rateable = !!onRate && !isUser && !streaming && !message.id.startsWith('tmp-')

  async function rate(next: Rating | null, text?: string) {
    if (!onRate || rating) return
    setRating(true)
    try {
      await onRate(message, next, text)
      if (next === null) setCommenting(false)
    } finally {
      setRating(false)
    }
  }

  useEffect(() => {
    if (editing) editRef.current?.focus()
  }, [editing])

  async function copy() {
    setCopied(await copyText(message.content))
    window.setTimeout(() => setCopied(false), 1500)
  }

  function submitEdit() {
    const text = draft.trim()
    if (!text) return
    setEditing(false)
    onEdit(message, text)
  }

  function onEditKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault()
      submitEdit()
    } else if (e.key === 'Escape') {
      e.preventDefault()
      setEditing(false)
    }
  }

  const label = statusText[message.status]
  return (
    <li
      className={`message ${message.role}`}
      data-testid="message"
      data-role={message.role}
      data-status={message.status}
      data-message-id={message.id}
      aria-label={isUser ? 'You said' : 'Assistant answered'}
    >
      <div className="bubble">
        {editing ? (
          <div className="edit">
            <label htmlFor={editId} className="sr-only">
              Edit message
            </label>
            <textarea id={editId} ref={editRef} value={draft} rows={Math.min(10, draft.split('\n').length + 1)} onChange={(e) => setDraft(e.target.value)} onKeyDown={onEditKey} />
            <div className="row">
              <button type="button" className="primary" onClick={submitEdit} disabled={!draft.trim() || busy}>
                Save and send
              </button>
              <button type="button" className="secondary" onClick={() => setEditing(false)}>
                Cancel
              </button>
            </div>
          </div>
        ) : isUser ? (
          <div className="user-text" data-testid="message-content">
            {message.content}
          </div>
        ) : message.content ? (
          <Markdown text={message.content} testId="message-content" />
        ) : streaming ? (
          <p className="muted thinking">{reconnecting ? 'Reconnecting…' : 'Thinking…'}</p>
        ) : null}
        {streaming && message.content && <span className="caret" aria-hidden="true" />}
        {label && (
          <p className={`status-badge ${message.status}`}>
            {label}
            {message.status === 'interrupted' && ' — the answer was cut off before it finished.'}
            {message.status === 'stopped' && ' — you stopped this answer.'}
          </p>
        )}
        {!isUser && !editing && message.sources && message.sources.length > 0 && <Citations sources={message.sources} />}
      </div>
      {!editing && (
        <div className="message-meta">
          {siblings.length > 1 && (
            <span className="branches" role="group" aria-label="Versions">
              <button type="button" className="icon-button" aria-label="Previous version" disabled={index === 0 || busy} onClick={() => onSwitchBranch(siblings[index - 1])}>
                ‹
              </button>
              <span className="branch-count">
                {index + 1}/{siblings.length}
              </span>
              <button type="button" className="icon-button" aria-label="Next version" disabled={index === siblings.length - 1 || busy} onClick={() => onSwitchBranch(siblings[index + 1])}>
                ›
              </button>
            </span>
          )}
          {!streaming && (
            <>
              <button type="button" className="chip" onClick={copy}>
                {copied ? 'Copied' : 'Copy'}
              </button>
              {isUser && (
                <button
                  type="button"
                  className="chip"
                  disabled={busy}
                  onClick={() => {
                    setDraft(message.content)
                    setEditing(true)
                  }}
                >
                  Edit
                </button>
              )}
              {!isUser && message.status === 'interrupted' && (
                <button type="button" className="chip" disabled={busy} onClick={() => onContinue(message)}>
                  Continue
                </button>
              )}
              {!isUser && (
                <button type="button" className="chip" disabled={busy} onClick={() => onRegenerate(message)}>
                  Regenerate
                </button>
              )}
              {rateable && (
                <span className="feedback" role="group" aria-label="Rate this answer">
                  <button
                    type="button"
                    className="icon-button"
                    aria-label="Good answer"
                    title="Good answer"
                    aria-pressed={feedback?.rating === 'up'}
                    disabled={rating}
                    onClick={() => void rate(feedback?.rating === 'up' ? null : 'up', feedback?.rating === 'up' ? undefined : (feedback?.comment ?? undefined))}
                  >
                    <ThumbUpIcon />
                  </button>
                  <button
                    type="button"
                    className="icon-button"
                    aria-label="Bad answer"
                    title="Bad answer"
                    aria-pressed={feedback?.rating === 'down'}
                    disabled={rating}
                    onClick={() => void rate(feedback?.rating === 'down' ? null : 'down', feedback?.rating === 'down' ? undefined : (feedback?.comment ?? undefined))}
                  >
                    <ThumbDownIcon />
                  </button>
                  {feedback && !commenting && (
                    <button
                      type="button"
                      className="chip"
                      onClick={() => {
                        setComment(feedback.comment ?? '')
                        setCommenting(true)
                      }}
                    >
                      {feedback.comment ? 'Edit comment' : 'Add a comment'}
                    </button>
                  )}
                </span>
              )}
              {!isUser && (message.usage || message.model) && (
                <span className="muted usage-line">
                  {message.model}
                  {message.usage && ` · ${formatNumber(message.usage.inputTokens)} in / ${formatNumber(message.usage.outputTokens)} out`}
                  {message.costUsd != null && message.costUsd > 0 && ` · ${formatUsd(message.costUsd)}`}
                </span>
              )}
            </>
          )}
        </div>
      )}
      {rateable && feedback && commenting && (
        <form
          className="feedback-comment"
          onSubmit={(e) => {
            e.preventDefault()
            void rate(feedback.rating, comment.trim()).then(() => setCommenting(false))
          }}
        >
          <label htmlFor={commentId}>Comment on this answer (optional)</label>
          <textarea id={commentId} rows={2} maxLength={2000} value={comment} onChange={(e) => setComment(e.target.value)} />
          <div className="row">
            <button type="submit" className="primary" disabled={rating}>
              Save comment
            </button>
            <button type="button" className="secondary" onClick={() => setCommenting(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {rateable && feedback?.comment && !commenting && (
        <p className="feedback-note muted" data-testid="feedback-comment">
          Your comment: {feedback.comment}
        </p>
      )}
    </li>
  )
}
