import { useCallback, useEffect, useState } from 'react'
import { api, ApiError, errorMessage, setUnauthorizedHandler } from './api/client'
import type { Me } from './api/types'
import { AuthScreen } from './components/AuthScreen'
import { Shell } from './components/Shell'
import { SharedPage } from './pages/SharedPage'

/** `/s/<token>` is a share link: it is shown without signing in. */
const sharedToken = /^\/s\/([A-Za-z0-9_-]+)$/.exec(window.location.pathname)?.[1]

export default function App() {
  if (sharedToken) return <SharedPage token={sharedToken} />
  return <SignedInApp />
}

function SignedInApp() {
  // undefined while the first /api/me is in flight, null when signed out.
  const [me, setMe] = useState<Me | null | undefined>(undefined)
  const [startupError, setStartupError] = useState<string | null>(null)

  const loadMe = useCallback(async () => {
    try {
      setMe(await api<Me>('GET', '/api/me'))
      setStartupError(null)
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) setMe(null)
      else {
        setMe(null)
        setStartupError(errorMessage(error))
      }
    }
  }, [])

  useEffect(() => {
    void loadMe()
    setUnauthorizedHandler(() => setMe(null))
    return () => setUnauthorizedHandler(undefined)
  }, [loadMe])

  if (me === undefined) {
    return (
      <div className="splash" role="status" aria-live="polite">
        Loading…
      </div>
    )
  }
  if (me === null) return <AuthScreen onSignedIn={loadMe} startupError={startupError} />
  return <Shell me={me} onSignedOut={() => setMe(null)} />
}
