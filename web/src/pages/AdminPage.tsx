import { useCallback, useEffect, useState } from 'react'
import { api, errorMessage, isNotFound } from '../api/client'
import type { AdminModelUsage, AdminUsageReport, AdminUser, Me } from '../api/types'
import { formatDay, formatNumber, formatUsd } from '../lib/format'

export function AdminPage({ me }: { me: Me }) {
  const [users, setUsers] = useState<AdminUser[]>([])
  const [state, setState] = useState<'loading' | 'ready' | 'missing' | 'error'>('loading')
  const [error, setError] = useState<string | null>(null)
  const [busyId, setBusyId] = useState<string | null>(null)
  const [budgetFor, setBudgetFor] = useState<string | null>(null)
  const [budgetText, setBudgetText] = useState('')
  const [byModel, setByModel] = useState<AdminModelUsage[] | null>(null)

  const load = useCallback(async () => {
    try {
      const page = await api<{ items: AdminUser[] }>('GET', '/api/admin/users')
      setUsers(page.items ?? [])
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
    // This month's use of every model by every account, with the ratings its answers got.
    api<AdminUsageReport>('GET', '/api/admin/usage')
      .then((r) => setByModel(r.byModel ?? []))
      .catch((e: unknown) => {
        if (!isNotFound(e)) setError(errorMessage(e))
      })
  }, [load])

  async function setDisabled(user: AdminUser, disabled: boolean) {
    setBusyId(user.id)
    setError(null)
    try {
      await api('POST', `/api/admin/users/${encodeURIComponent(user.id)}/${disabled ? 'disable' : 'enable'}`)
      setUsers((list) => list.map((u) => (u.id === user.id ? { ...u, disabled } : u)))
    } catch (e) {
      setError(`Could not ${disabled ? 'disable' : 'enable'} ${user.email}: ${errorMessage(e)}`)
    } finally {
      setBusyId(null)
    }
  }

  async function saveBudget(user: AdminUser, clear: boolean) {
    const value = Number(budgetText)
    if (!clear && (!budgetText.trim() || !Number.isFinite(value) || value < 0)) {
      setError('Enter a monthly budget in US dollars (0 or more), or clear it.')
      return
    }
    setBusyId(user.id)
    setError(null)
    try {
      const body = clear ? { clearBudget: true } : { monthlyBudgetUsd: value }
      await api('PATCH', `/api/admin/users/${encodeURIComponent(user.id)}`, { body })
      setUsers((list) => list.map((u) => (u.id === user.id ? { ...u, monthlyBudgetUsd: clear ? null : value } : u)))
      setBudgetFor(null)
    } catch (e) {
      setError(`Could not set the budget of ${user.email}: ${errorMessage(e)}`)
    } finally {
      setBusyId(null)
    }
  }

  return (
    <section className="page wide" aria-labelledby="admin-title">
      <h1 id="admin-title">Users</h1>
      {state === 'loading' && <p className="muted" role="status">Loading users…</p>}
      {state === 'missing' && <p className="muted">User administration is not available on this server yet.</p>}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {state === 'ready' && (
        <table className="data-table">
          <caption>{users.length} accounts; usage is for the current month</caption>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Requests</th>
              <th scope="col">Tokens</th>
              <th scope="col">Cost</th>
              <th scope="col">Monthly budget</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.id}>
                <th scope="row">{u.email}</th>
                <td>{u.isAdmin ? 'Administrator' : 'User'}</td>
                <td>
                  <span className={`pill ${u.disabled ? 'off' : 'on'}`}>{u.disabled ? 'Disabled' : 'Active'}</span>
                </td>
                <td>{formatDay(u.createdAt)}</td>
                <td>{formatNumber(u.usage?.requests)}</td>
                <td>{formatNumber((u.usage?.inputTokens ?? 0) + (u.usage?.outputTokens ?? 0))}</td>
                <td>{formatUsd(u.usage?.costUsd)}</td>
                <td>
                  {budgetFor === u.id ? (
                    <span className="row">
                      <label htmlFor={`budget-${u.id}`} className="sr-only">
                        Monthly budget for {u.email} in US dollars
                      </label>
                      <input
                        id={`budget-${u.id}`}
                        className="budget-input"
                        type="number"
                        min="0"
                        step="0.01"
                        value={budgetText}
                        onChange={(e) => setBudgetText(e.target.value)}
                      />
                      <button type="button" className="primary" disabled={busyId === u.id} onClick={() => void saveBudget(u, false)}>
                        Save
                      </button>
                      <button type="button" className="secondary" disabled={busyId === u.id} onClick={() => void saveBudget(u, true)}>
                        No limit
                      </button>
                      <button type="button" className="link" onClick={() => setBudgetFor(null)}>
                        Cancel
                      </button>
                    </span>
                  ) : (
                    <span className="row">
                      {u.monthlyBudgetUsd == null ? 'no limit' : formatUsd(u.monthlyBudgetUsd)}
                      <button
                        type="button"
                        className="link"
                        aria-label={`Change the monthly budget of ${u.email}`}
                        onClick={() => {
                          setBudgetFor(u.id)
                          setBudgetText(u.monthlyBudgetUsd == null ? '' : String(u.monthlyBudgetUsd))
                        }}
                      >
                        Change
                      </button>
                    </span>
                  )}
                </td>
                <td className="actions">
                  {u.id !== me.id && (
                    <button
                      type="button"
                      className={u.disabled ? 'secondary' : 'danger'}
                      disabled={busyId === u.id}
                      aria-label={`${u.disabled ? 'Enable' : 'Disable'} ${u.email}`}
                      onClick={() => void setDisabled(u, !u.disabled)}
                    >
                      {u.disabled ? 'Enable' : 'Disable'}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {byModel && (
        <>
          <h2 id="model-usage-title">Usage and feedback by model</h2>
          <table className="data-table" data-testid="model-usage" aria-labelledby="model-usage-title">
            <caption>Every account, current month; ratings are the thumbs up and down given to each model's answers</caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Requests</th>
                <th scope="col">Tokens</th>
                <th scope="col">Cost</th>
                <th scope="col">Good answers</th>
                <th scope="col">Bad answers</th>
              </tr>
            </thead>
            <tbody>
              {byModel.length === 0 && (
                <tr>
                  <td colSpan={6} className="muted">
                    Nothing used this month yet.
                  </td>
                </tr>
              )}
              {byModel.map((m) => (
                <tr key={m.model} data-model={m.model}>
                  <th scope="row">{m.model || 'unknown'}</th>
                  <td>{formatNumber(m.requests)}</td>
                  <td>{formatNumber(m.inputTokens + m.outputTokens)}</td>
                  <td>{formatUsd(m.costUsd)}</td>
                  <td data-testid="thumbs-up">{formatNumber(m.thumbsUp)}</td>
                  <td data-testid="thumbs-down">{formatNumber(m.thumbsDown)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  )
}
