import { useCallback, useEffect, useState } from 'react'
import { api } from '../api/client'
import type { Me, ModelInfo } from '../api/types'
import { navigate, useRoute } from '../lib/route'
import { useTheme } from '../lib/theme'
import { AccountPage } from '../pages/AccountPage'
import { AdminPage } from '../pages/AdminPage'
import { AuditPage } from '../pages/AuditPage'
import { FilesPage } from '../pages/FilesPage'
import { KeysPage } from '../pages/KeysPage'
import { PromptsPage } from '../pages/PromptsPage'
import { UsagePage } from '../pages/UsagePage'
import { ChatView } from './ChatView'
import { Sidebar } from './Sidebar'

interface Props {
  me: Me
  onSignedOut: () => void
}

export function Shell({ me, onSignedOut }: Props) {
  const route = useRoute()
  const [theme, setTheme] = useTheme()
  const [menuOpen, setMenuOpen] = useState(false)
  const [models, setModels] = useState<ModelInfo[]>([])
  // Bumped whenever the conversation list should be fetched again (new message, rename, …).
  const [listVersion, setListVersion] = useState(0)
  const refreshList = useCallback(() => setListVersion((v) => v + 1), [])

  useEffect(() => {
    api<ModelInfo[]>('GET', '/api/models')
      .then((list) => setModels(Array.isArray(list) ? list : []))
      .catch(() => setModels([]))
  }, [])

  useEffect(() => {
    if ((route.page === 'admin' || route.page === 'audit') && !me.isAdmin) navigate({ page: 'chat' }, true)
  }, [route.page, me.isAdmin])

  useEffect(() => setMenuOpen(false), [route])

  async function signOut() {
    try {
      await api('POST', '/api/auth/logout')
    } catch {
      // Signing out locally is what the user asked for, even if the server call failed.
    }
    navigate({ page: 'chat' }, true)
    onSignedOut()
  }

  const activeId = route.page === 'chat' ? route.conversationId : undefined
  return (
    <div className={`shell${menuOpen ? ' menu-open' : ''}`}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Sidebar
        me={me}
        route={route}
        activeId={activeId}
        listVersion={listVersion}
        theme={theme}
        onThemeChange={setTheme}
        onSignOut={signOut}
        onClose={() => setMenuOpen(false)}
      />
      {menuOpen && <button type="button" className="backdrop" aria-label="Close menu" onClick={() => setMenuOpen(false)} />}
      <div className="main-column">
        <header className="topbar">
          <button
            type="button"
            className="icon-button menu-button"
            aria-label="Open menu"
            aria-controls="sidebar"
            aria-expanded={menuOpen}
            onClick={() => setMenuOpen((o) => !o)}
          >
            <span className="hamburger" aria-hidden="true" />
          </button>
          <span className="topbar-title">Jackcwf</span>
        </header>
        <main id="main" className="main" tabIndex={-1}>
          {route.page === 'chat' && (
            <ChatView conversationId={route.conversationId} models={models} onConversationsChanged={refreshList} />
          )}
          {route.page === 'usage' && <UsagePage />}
          {route.page === 'keys' && <KeysPage />}
          {route.page === 'files' && <FilesPage />}
          {route.page === 'prompts' && <PromptsPage />}
          {route.page === 'admin' && me.isAdmin && <AdminPage me={me} />}
          {route.page === 'audit' && me.isAdmin && <AuditPage />}
          {route.page === 'account' && (
            <AccountPage
              me={me}
              onDeleted={() => {
                navigate({ page: 'chat' }, true)
                onSignedOut()
              }}
            />
          )}
        </main>
      </div>
    </div>
  )
}
