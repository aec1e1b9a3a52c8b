import { useCallback, useEffect, useState } from 'react'
import { api, errorMessage, isNotFound } from '../api/client'
import type { AdminUser, Me } from '../api/types'
import { formatDate, formatNumber, formatUsd } from '../lib/format'

export function AdminPage({ me }: { me: Me }) {
  const [users, setUsers] = useState<AdminUser[]>([])
  const [state, setState] = useState<'loading' | 'ready' | 'missing' | 'error'>('loading')
  const [error, setError] = useState<string | null>(null)
  const [busyId, setBusyId] = useState<string | null>(null)

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

  return (
    <section className="page" aria-labelledby="admin-title">
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
              <th scope="col">Cost</th>
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
                <td>{formatDate(u.createdAt)}</td>
                <td>{formatNumber(u.usage?.requests)}</td>
                <td>{formatUsd(u.usage?.costUsd)}</td>
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
    </section>
  )
}
