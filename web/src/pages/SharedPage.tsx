import { useEffect, useState } from 'react'
import { api, errorMessage, isNotFound } from '../api/client'
import type { SharedConversation } from '../api/types'
import { Markdown } from '../components/Markdown'
import { formatDate } from '../lib/format'

/** A share link opened by anyone, signed in or not: the snapshot, read-only, rendered like the chat. */
export function SharedPage({ token }: { token: string }) {
  const [shared, setShared] = useState<SharedConversation | null>(null)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    api<SharedConversation>('GET', `/api/shared/${encodeURIComponent(token)}`)
      .then((c) => {
        setShared(c)
        document.title = `${c.title || 'Shared conversation'} — Jackcwf`
      })
      .catch((e) => setError(isNotFound(e) ? 'This link does not exist or was revoked by its owner.' : errorMessage(e)))
  }, [token])

  return (
    <main id="main" className="shared-page">
      <header className="shared-header">
        <a href="/" className="brand">
          Jackcwf
        </a>
        <span className="muted">Shared conversation (read-only)</span>
      </header>
      {error && (
        <p className="page-message" role="alert">
          {error}
        </p>
      )}
      {!shared && !error && (
        <p className="muted center" role="status">
          Loading…
        </p>
      )}
      {shared && (
        <article className="chat shared" aria-labelledby="shared-title">
          <h1 id="shared-title">{shared.title || 'Conversation'}</h1>
          <p className="muted">Shared {formatDate(shared.sharedAt)}</p>
          <ol className="messages" aria-label="Messages">
            {shared.messages.map((m, i) => (
              <li key={i} className={`message ${m.role}`} data-testid="message" data-role={m.role} aria-label={m.role === 'user' ? 'User said' : 'Assistant answered'}>
                <div className="bubble">
                  {m.role === 'user' ? (
                    <div className="user-text" data-testid="message-content">
                      {m.content}
                    </div>
                  ) : (
                    <Markdown text={m.content} testId="message-content" />
                  )}
                </div>
                {m.role === 'assistant' && m.model && (
                  <div className="message-meta">
                    <span className="muted usage-line">{m.model}</span>
                  </div>
                )}
              </li>
            ))}
          </ol>
        </article>
      )}
    </main>
  )
}
