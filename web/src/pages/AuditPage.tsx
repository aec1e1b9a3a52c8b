import { useCallback, useEffect, useId, useState } from 'react'
import { api, errorMessage } from '../api/client'
import type { AuditEntry, Page } from '../api/types'
import { formatDate } from '../lib/format'

/** The action names the server writes (Audit/AuditEntry.cs), with words for people. */
const actions: [string, string][] = [
  ['auth.sign_in', 'Sign-in'],
  ['auth.register', 'Registration'],
  ['user.role_granted', 'Role granted'],
  ['user.role_revoked', 'Role revoked'],
  ['user.disabled', 'User disabled'],
  ['user.enabled', 'User enabled'],
  ['user.budget_changed', 'Budget changed'],
  ['api_key.created', 'API key created'],
  ['api_key.revoked', 'API key revoked'],
  ['share.created', 'Share link created'],
  ['share.revoked', 'Share link revoked'],
  ['file.uploaded', 'File uploaded'],
  ['file.deleted', 'File deleted'],
  ['account.deleted', 'Account deleted'],
  ['account.exported', 'Data exported'],
  ['setup.token_used', 'Setup token used'],
]
const actionLabel = new Map(actions)

export function AuditPage() {
  const [items, setItems] = useState<AuditEntry[]>([])
  const [cursor, setCursor] = useState<string | null>(null)
  const [action, setAction] = useState('')
  const [outcome, setOutcome] = useState('')
  const [state, setState] = useState<'loading' | 'ready' | 'error'>('loading')
  const [error, setError] = useState<string | null>(null)
  const actionId = useId()
  const outcomeId = useId()

  const load = useCallback(
    async (after: string | null) => {
      const q = new URLSearchParams({ limit: '50' })
      if (action) q.set('action', action)
      if (outcome) q.set('outcome', outcome)
      if (after) q.set('cursor', after)
      try {
        const page = await api<Page<AuditEntry>>('GET', `/api/admin/audit?${q}`)
        setItems((prev) => (after ? [...prev, ...page.items] : page.items))
        setCursor(page.nextCursor ?? null)
        setState('ready')
        setError(null)
      } catch (e) {
        setError(errorMessage(e))
        setState('error')
      }
    },
    [action, outcome],
  )

  useEffect(() => {
    setState('loading')
    void load(null)
  }, [load])

  return (
    <section className="page wide" aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <div className="row filters">
        <label htmlFor={actionId}>Action</label>
        <select id={actionId} value={action} onChange={(e) => setAction(e.target.value)}>
          <option value="">All actions</option>
          {actions.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
        <label htmlFor={outcomeId}>Outcome</label>
        <select id={outcomeId} value={outcome} onChange={(e) => setOutcome(e.target.value)}>
          <option value="">Any</option>
          <option value="success">Success</option>
          <option value="failure">Failure</option>
        </select>
      </div>
      {state === 'loading' && (
        <p className="muted" role="status">
          Loading the audit log…
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {state === 'ready' && (
        // Wide rows scroll sideways on narrow screens: focusable so the keyboard can scroll them too.
        <table className="data-table" data-testid="audit-table" tabIndex={0}>
          <caption>{items.length === 0 ? 'No entries match.' : `Newest first; ${items.length} shown`}</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
              <th scope="col">Actor</th>
              <th scope="col">Target</th>
              <th scope="col">Detail</th>
              <th scope="col">Client</th>
            </tr>
          </thead>
          <tbody>
            {items.map((a) => (
              <tr key={a.id} data-action={a.action}>
                <td>{formatDate(a.createdAt)}</td>
                <th scope="row">{actionLabel.get(a.action) ?? a.action}</th>
                <td>
                  <span className={`pill ${a.outcome === 'success' ? 'on' : 'off'}`}>{a.outcome === 'success' ? 'Success' : 'Failure'}</span>
                </td>
                <td>{a.actorEmail ?? '—'}</td>
                <td className="mono">{a.target ?? '—'}</td>
                <td>{a.detail ?? ''}</td>
                <td className="muted" title={a.userAgent ?? ''}>
                  {a.ip ?? ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" className="secondary" onClick={() => void load(cursor)}>
          Load more
        </button>
      )}
    </section>
  )
}
