import { useId, useState, type FormEvent } from 'react'
import { api, errorMessage } from '../api/client'
import type { Me } from '../api/types'

/** The user's data in their hands: download everything, or delete the account and everything it owns. */
export function AccountPage({ me, onDeleted }: { me: Me; onDeleted: () => void }) {
  const [password, setPassword] = useState('')
  const [confirming, setConfirming] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const passwordId = useId()

  async function deleteAccount(e: FormEvent) {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await api('DELETE', '/api/me', { body: { password } })
      onDeleted()
    } catch (err) {
      setError(errorMessage(err))
    } finally {
      setBusy(false)
    }
  }

  return (
    <section className="page" aria-labelledby="account-title">
      <h1 id="account-title">Your account</h1>
      <p>
        Signed in as <strong>{me.email}</strong>.
      </p>
      <h2>Your data</h2>
      <p className="muted">A ZIP of JSON and Markdown: every conversation with all its branches, your usage, API key names and share links.</p>
      <a className="button secondary" href="/api/me/export" download>
        Download my data
      </a>
      <h2>Delete account</h2>
      <p className="muted">Deletes the account and everything it owns, at once and for good. API keys and share links stop working immediately.</p>
      {!confirming ? (
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Delete my account…
        </button>
      ) : (
        <form className="stack" onSubmit={(e) => void deleteAccount(e)}>
          <label htmlFor={passwordId}>Enter your password to confirm</label>
          <input id={passwordId} type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
          <div className="row">
            <button type="submit" className="danger" disabled={busy}>
              Delete my account now
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  )
}
