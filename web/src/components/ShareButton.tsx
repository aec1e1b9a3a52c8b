import { useEffect, useId, useState } from 'react'
import { api, errorMessage } from '../api/client'
import type { ShareLink } from '../api/types'
import { copyText } from './Markdown'

interface Props {
  conversationId: string
  /** The last message of the branch on screen: that branch is what gets shared. */
  leafMessageId?: string
  disabled: boolean
}

/** Publishes a read-only snapshot of the visible branch and shows its link, with copy and revoke. */
export function ShareButton({ conversationId, leafMessageId, disabled }: Props) {
  const [open, setOpen] = useState(false)
  const [link, setLink] = useState<ShareLink | null>(null)
  const [note, setNote] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const panelId = useId()
  const urlId = useId()

  useEffect(() => {
    setOpen(false)
    setLink(null)
    setNote(null)
  }, [conversationId])

  async function share() {
    setBusy(true)
    setNote(null)
    try {
      setLink(await api<ShareLink>('POST', `/api/conversations/${encodeURIComponent(conversationId)}/share`, { body: { messageId: leafMessageId } }))
      setOpen(true)
    } catch (e) {
      setOpen(true)
      setNote(`Could not share: ${errorMessage(e)}`)
    } finally {
      setBusy(false)
    }
  }

  async function revoke() {
    setBusy(true)
    try {
      await api('DELETE', `/api/conversations/${encodeURIComponent(conversationId)}/share`)
      setLink(null)
      setNote('Sharing stopped: the link no longer works.')
    } catch (e) {
      setNote(`Could not stop sharing: ${errorMessage(e)}`)
    } finally {
      setBusy(false)
    }
  }

  return (
    <>
      <button type="button" className="secondary" aria-expanded={open} aria-controls={panelId} disabled={disabled || busy} onClick={() => void share()}>
        Share
      </button>
      {open && (
        <div id={panelId} className="share-panel" role="group" aria-label="Share link">
          {link && (
            <>
              <label htmlFor={urlId}>Anyone with this link can read this branch as it is now (read-only, without your email):</label>
              <div className="row">
                <input id={urlId} readOnly value={link.url} onFocus={(e) => e.currentTarget.select()} />
                <button type="button" className="primary" onClick={() => void copyText(link.url).then((ok) => setNote(ok ? 'Link copied.' : 'Copy failed; select the link and copy it.'))}>
                  Copy link
                </button>
                <button type="button" className="danger" disabled={busy} onClick={() => void revoke()}>
                  Stop sharing
                </button>
              </div>
            </>
          )}
          {note && (
            <p className="muted" role="status">
              {note}
            </p>
          )}
          <button type="button" className="link" onClick={() => setOpen(false)}>
            Close
          </button>
        </div>
      )}
    </>
  )
}
