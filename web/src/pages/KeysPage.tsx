import { useCallback, useEffect, useId, useState, type FormEvent } from 'react'
import { api, errorMessage, isNotFound } from '../api/client'
import type { ApiKey, NewApiKey, Page } from '../api/types'
import { copyText } from '../components/Markdown'
import { formatDate } from '../lib/format'

export function KeysPage() {
  const [keys, setKeys] = useState<ApiKey[]>([])
  const [state, setState] = useState<'loading' | 'ready' | 'missing' | 'error'>('loading')
  const [error, setError] = useState<string | null>(null)
  const [name, setName] = useState('')
  const [created, setCreated] = useState<NewApiKey | null>(null)
  const [copied, setCopied] = useState(false)
  const [confirming, setConfirming] = useState<string | null>(null)
  const nameId = useId()
  const keyId = useId()

  const load = useCallback(async () => {
    try {
      const page = await api<Page<ApiKey>>('GET', '/api/keys')
      setKeys(page.items ?? [])
      setState('ready')
    } catch (e) {
      if (isNotFound(e)) setState('missing')
      else {
        setError(errorMessage(e))
        setState('error')
      }
    }
  }, [])

  useEffect(() => {
    void load()
  }, [load])

  async function create(e: FormEvent) {
    e.preventDefault()
    setError(null)
    setCopied(false)
    try {
      const key = await api<NewApiKey>('POST', '/api/keys', { body: { name: name.trim() } })
      setCreated(key)
      setName('')
      await load()
    } catch (err) {
      setError(`Could not create the key: ${errorMessage(err)}`)
    }
  }

  async function revoke(id: string) {
    setConfirming(null)
    setError(null)
    try {
      await api('DELETE', `/api/keys/${encodeURIComponent(id)}`)
      setKeys((k) => k.filter((x) => x.id !== id))
      if (created?.id === id) setCreated(null)
    } catch (err) {
      setError(`Could not revoke the key: ${errorMessage(err)}`)
    }
  }

  return (
    <section className="page" aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      <p className="muted">
        Keys let programs use this service: send <code>Authorization: Bearer &lt;key&gt;</code> to <code>/v1/chat/completions</code> (OpenAI-compatible) or
        to <code>/api</code>.
      </p>
      {state === 'missing' && <p className="muted">API keys are not available on this server yet.</p>}
      {state === 'loading' && <p className="muted" role="status">Loading keys…</p>}
      {(state === 'ready' || state === 'error') && (
        <>
          <form className="inline-form" onSubmit={create}>
            <label htmlFor={nameId}>Key name</label>
            <input id={nameId} value={name} required maxLength={100} placeholder="e.g. laptop script" onChange={(e) => setName(e.target.value)} />
            <button type="submit" className="primary" disabled={!name.trim()}>
              Create key
            </button>
          </form>
          {created && (
            <div className="new-key" role="status">
              <label htmlFor={keyId}>New API key “{created.name}”</label>
              <div className="row">
                <input id={keyId} readOnly value={created.key} onFocus={(e) => e.target.select()} />
                <button type="button" className="primary" onClick={async () => setCopied(await copyText(created.key))}>
                  {copied ? 'Copied' : 'Copy'}
                </button>
              </div>
              <p className="warning">Copy it now: it is shown only once and cannot be recovered.</p>
              <button type="button" className="link" onClick={() => setCreated(null)}>
                I have copied it
              </button>
            </div>
          )}
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <table className="data-table">
            <caption>Your keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    No keys yet.
                  </td>
                </tr>
              )}
              {keys.map((k) => (
                <tr key={k.id}>
                  <th scope="row">{k.name}</th>
                  <td>
                    <code>{k.prefix}…</code>
                  </td>
                  <td>{formatDate(k.createdAt)}</td>
                  <td>{k.lastUsedAt ? formatDate(k.lastUsedAt) : 'never'}</td>
                  <td className="actions">
                    {confirming === k.id ? (
                      <>
                        <button type="button" className="danger" onClick={() => void revoke(k.id)}>
                          Revoke “{k.name}” now
                        </button>
                        <button type="button" className="secondary" onClick={() => setConfirming(null)}>
                          Cancel
                        </button>
                      </>
                    ) : (
                      <button type="button" className="secondary" aria-label={`Revoke key “${k.name}”`} onClick={() => setConfirming(k.id)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  )
}
