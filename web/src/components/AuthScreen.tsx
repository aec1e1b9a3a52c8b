import { useEffect, useId, useState, type FormEvent } from 'react'
import { api, ApiError, errorMessage, isNotFound } from '../api/client'
import type { AuthProvider } from '../api/types'

interface Props {
  onSignedIn: () => Promise<void>
  startupError?: string | null
}

export function AuthScreen({ onSignedIn, startupError }: Props) {
  const [mode, setMode] = useState<'signin' | 'register'>('signin')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(startupError ?? null)
  const [providers, setProviders] = useState<AuthProvider[]>([])
  const emailId = useId()
  const passwordId = useId()
  const hintId = useId()

  useEffect(() => {
    let cancelled = false
    api<AuthProvider[]>('GET', '/api/auth/providers')
      .then((list) => {
        if (!cancelled && Array.isArray(list)) setProviders(list.filter((p) => p && p.loginUrl))
      })
      .catch((e: unknown) => {
        // No external sign-in configured (404) or not reachable: the button is simply not shown.
        if (!isNotFound(e) && !cancelled) setProviders([])
      })
    return () => {
      cancelled = true
    }
  }, [])

  async function submit(e: FormEvent) {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      if (mode === 'register') await api('POST', '/api/auth/register', { body: { email, password } })
      try {
        await api('POST', '/api/auth/login?useCookies=true', { body: { email, password } })
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          throw new Error('Wrong email or password, or the account is disabled. Check them and try again.')
        }
        throw err
      }
      await onSignedIn()
    } catch (err) {
      setError(errorMessage(err))
    } finally {
      setBusy(false)
    }
  }

  const registering = mode === 'register'
  return (
    <main className="auth">
      <div className="auth-card">
        <h1 className="brand">
          <span className="brand-mark" aria-hidden="true" />
          Jackcwf
        </h1>
        <p className="muted">Chat with language models, keep your conversations.</p>
        <div className="segmented" role="tablist" aria-label="Account">
          <button type="button" role="tab" aria-selected={!registering} onClick={() => setMode('signin')}>
            Sign in
          </button>
          <button type="button" role="tab" aria-selected={registering} onClick={() => setMode('register')}>
            Register
          </button>
        </div>
        <form onSubmit={submit} className="stack" aria-label={registering ? 'Create account' : 'Sign in'}>
          <label htmlFor={emailId}>Email</label>
          <input
            id={emailId}
            type="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
          <label htmlFor={passwordId}>Password</label>
          <input
            id={passwordId}
            type="password"
            autoComplete={registering ? 'new-password' : 'current-password'}
            required
            minLength={registering ? 8 : undefined}
            aria-describedby={registering ? hintId : undefined}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          {registering && (
            <p id={hintId} className="hint">
              At least 8 characters, with an upper-case letter, a lower-case letter and a digit.
            </p>
          )}
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Please wait…' : registering ? 'Create account' : 'Sign in'}
          </button>
        </form>
        {providers.length > 0 && (
          <div className="stack providers">
            <p className="divider">
              <span>or</span>
            </p>
            {providers.map((p) => (
              <a key={p.name} className="button" href={p.loginUrl}>
                Sign in with {p.displayName || p.name}
              </a>
            ))}
          </div>
        )}
      </div>
    </main>
  )
}
