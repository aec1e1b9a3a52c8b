import { useCallback, useEffect, useId, useRef, useState, type KeyboardEvent } from 'react'
import { api, errorMessage } from '../api/client'
import type { ConversationSummary, Me, Page } from '../api/types'
import { navigate, routeHref, type Route } from '../lib/route'
import type { ThemeChoice } from '../lib/theme'
import { AutoThemeIcon, MoonIcon, PencilIcon, SunIcon, TrashIcon } from './Icons'

interface Props {
  me: Me
  route: Route
  activeId?: string
  listVersion: number
  theme: ThemeChoice
  onThemeChange: (t: ThemeChoice) => void
  onSignOut: () => void
  onClose: () => void
}

const PAGE_SIZE = 30
const UNDO_MS = 6000

interface PendingDelete {
  conversation: ConversationSummary
  timer: number
}

export function displayTitle(c: { title?: string | null }): string {
  return c.title?.trim() || 'New chat'
}

/** Sends deletions that are still waiting for their undo window when the page goes away. */
function flushDelete(id: string) {
  void fetch(`/api/conversations/${encodeURIComponent(id)}`, {
    method: 'DELETE',
    headers: { 'X-Requested-With': 'XMLHttpRequest' },
    credentials: 'same-origin',
    keepalive: true,
  }).catch(() => undefined)
}

export function Sidebar({ me, route, activeId, listVersion, theme, onThemeChange, onSignOut, onClose }: Props) {
  const [items, setItems] = useState<ConversationSummary[]>([])
  const [nextCursor, setNextCursor] = useState<string | null>(null)
  const [loading, setLoading] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [query, setQuery] = useState('')
  const [debouncedQuery, setDebouncedQuery] = useState('')
  const [renamingId, setRenamingId] = useState<string | null>(null)
  const [renameText, setRenameText] = useState('')
  const [pending, setPending] = useState<PendingDelete | null>(null)
  const pendingRef = useRef<PendingDelete | null>(null)
  const listRef = useRef<HTMLDivElement>(null)
  const sentinelRef = useRef<HTMLLIElement>(null)
  const requestSeq = useRef(0)
  const searchId = useId()
  const renameId = useId()

  useEffect(() => {
    const t = window.setTimeout(() => setDebouncedQuery(query.trim()), 250)
    return () => window.clearTimeout(t)
  }, [query])

  const load = useCallback(async (cursor: string | null, q: string) => {
    const seq = ++requestSeq.current
    setLoading(true)
    try {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) })
      if (cursor) params.set('cursor', cursor)
      if (q) params.set('q', q)
      const page = await api<Page<ConversationSummary>>('GET', `/api/conversations?${params}`)
      if (seq !== requestSeq.current) return
      setItems((prev) => {
        const merged = cursor ? [...prev, ...page.items] : page.items
        const seen = new Set<string>()
        return merged.filter((c) => (seen.has(c.id) ? false : (seen.add(c.id), true)))
      })
      setNextCursor(page.nextCursor ?? null)
      setError(null)
    } catch (e) {
      if (seq === requestSeq.current) setError(errorMessage(e))
    } finally {
      if (seq === requestSeq.current) setLoading(false)
    }
  }, [])

  useEffect(() => {
    void load(null, debouncedQuery)
  }, [load, debouncedQuery, listVersion])

  // A list that failed to load (server restarting, network down) tries again by itself.
  useEffect(() => {
    if (!error || items.length > 0) return
    const retry = window.setTimeout(() => void load(null, debouncedQuery), 5000)
    return () => window.clearTimeout(retry)
  }, [error, items.length, load, debouncedQuery])

  // Paging as you scroll: a sentinel at the end of the list loads the next page when it shows.
  useEffect(() => {
    const sentinel = sentinelRef.current
    if (!sentinel || !nextCursor) return
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting) && !loading) void load(nextCursor, debouncedQuery)
      },
      { root: listRef.current, rootMargin: '120px' },
    )
    observer.observe(sentinel)
    return () => observer.disconnect()
  }, [nextCursor, loading, load, debouncedQuery])

  useEffect(() => {
    const onHide = () => {
      if (pendingRef.current) flushDelete(pendingRef.current.conversation.id)
    }
    window.addEventListener('pagehide', onHide)
    return () => window.removeEventListener('pagehide', onHide)
  }, [])

  async function commitDelete(p: PendingDelete) {
    pendingRef.current = null
    setPending((cur) => (cur?.conversation.id === p.conversation.id ? null : cur))
    try {
      await api('DELETE', `/api/conversations/${encodeURIComponent(p.conversation.id)}`)
    } catch (e) {
      setError(`Could not delete “${displayTitle(p.conversation)}”: ${errorMessage(e)}`)
      setItems((prev) => [p.conversation, ...prev.filter((c) => c.id !== p.conversation.id)])
    }
  }

  function startDelete(c: ConversationSummary) {
    // Only one deletion waits for undo at a time: an earlier one is carried out now.
    if (pendingRef.current) {
      window.clearTimeout(pendingRef.current.timer)
      void commitDelete(pendingRef.current)
    }
    setItems((prev) => prev.filter((x) => x.id !== c.id))
    const entry: PendingDelete = { conversation: c, timer: 0 }
    entry.timer = window.setTimeout(() => void commitDelete(entry), UNDO_MS)
    pendingRef.current = entry
    setPending(entry)
    if (c.id === activeId) navigate({ page: 'chat' }, true)
  }

  function undoDelete() {
    const p = pendingRef.current
    if (!p) return
    window.clearTimeout(p.timer)
    pendingRef.current = null
    setPending(null)
    setItems((prev) =>
      [p.conversation, ...prev.filter((c) => c.id !== p.conversation.id)].sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : -1)),
    )
  }

  function beginRename(c: ConversationSummary) {
    setRenamingId(c.id)
    setRenameText(c.title ?? '')
  }

  async function saveRename(c: ConversationSummary) {
    const title = renameText.trim()
    setRenamingId(null)
    if (!title || title === c.title) return
    setItems((prev) => prev.map((x) => (x.id === c.id ? { ...x, title } : x)))
    try {
      await api('PATCH', `/api/conversations/${encodeURIComponent(c.id)}`, { body: { title } })
      window.dispatchEvent(new CustomEvent('jackcwf:conversation-renamed', { detail: { id: c.id, title } }))
    } catch (e) {
      setError(`Could not rename: ${errorMessage(e)}`)
      setItems((prev) => prev.map((x) => (x.id === c.id ? c : x)))
    }
  }

  function onRenameKey(e: KeyboardEvent<HTMLInputElement>, c: ConversationSummary) {
    if (e.key === 'Enter') {
      e.preventDefault()
      void saveRename(c)
    } else if (e.key === 'Escape') {
      e.preventDefault()
      setRenamingId(null)
    }
  }

  const nextTheme: Record<ThemeChoice, ThemeChoice> = { system: 'light', light: 'dark', dark: 'system' }
  const themeLabel: Record<ThemeChoice, string> = { system: 'System theme', light: 'Light theme', dark: 'Dark theme' }

  return (
    <nav id="sidebar" className="sidebar" aria-label="Conversations and settings">
      <div className="sidebar-head">
        <a className="brand small" href="#/" onClick={onClose}>
          <span className="brand-mark" aria-hidden="true" />
          Jackcwf
        </a>
        <button type="button" className="icon-button close-menu" aria-label="Close menu" onClick={onClose}>
          ×
        </button>
      </div>
      <a className="button primary new-chat" href={routeHref({ page: 'chat' })} onClick={onClose}>
        + New chat
      </a>
      <div className="search">
        <label htmlFor={searchId} className="sr-only">
          Search conversations
        </label>
        <input
          id={searchId}
          type="search"
          placeholder="Search conversations"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
      </div>
      <div className="conversation-list" ref={listRef}>
        <ul aria-label="Conversations" aria-busy={loading}>
          {items.map((c) => (
            <li key={c.id} data-testid="conversation" className={c.id === activeId ? 'active' : undefined}>
              {renamingId === c.id ? (
                <div className="rename">
                  <label htmlFor={renameId} className="sr-only">
                    Conversation title
                  </label>
                  <input
                    id={renameId}
                    autoFocus
                    value={renameText}
                    maxLength={200}
                    onChange={(e) => setRenameText(e.target.value)}
                    onKeyDown={(e) => onRenameKey(e, c)}
                    onBlur={() => void saveRename(c)}
                  />
                </div>
              ) : (
                <>
                  <a
                    className="conversation-link"
                    href={routeHref({ page: 'chat', conversationId: c.id })}
                    aria-current={c.id === activeId ? 'page' : undefined}
                    onClick={onClose}
                  >
                    {displayTitle(c)}
                  </a>
                  <span className="row-actions">
                    <button type="button" className="icon-button" aria-label={`Rename “${displayTitle(c)}”`} title="Rename" onClick={() => beginRename(c)}>
                      <PencilIcon />
                    </button>
                    <button type="button" className="icon-button" aria-label={`Delete “${displayTitle(c)}”`} title="Delete" onClick={() => startDelete(c)}>
                      <TrashIcon />
                    </button>
                  </span>
                </>
              )}
            </li>
          ))}
          {nextCursor && <li ref={sentinelRef} className="sentinel" aria-hidden="true" />}
        </ul>
        {!loading && items.length === 0 && !error && (
          <p className="muted empty-list">{debouncedQuery ? 'No conversation matches.' : 'No conversations yet.'}</p>
        )}
        {loading && <p className="muted empty-list">Loading…</p>}
        {error && (
          <p className="error small" role="alert">
            {error}{' '}
            <button type="button" className="link" onClick={() => void load(null, debouncedQuery)}>
              Retry
            </button>
          </p>
        )}
      </div>
      <div className="toast-area" aria-live="polite">
        {pending && (
          <div className="toast" role="status">
            <span>Deleted “{displayTitle(pending.conversation)}”.</span>
            <button type="button" className="link" onClick={undoDelete}>
              Undo
            </button>
          </div>
        )}
      </div>
      <div className="sidebar-foot">
        <a href="#/usage" aria-current={route.page === 'usage' ? 'page' : undefined} onClick={onClose}>
          Usage
        </a>
        <a href="#/files" aria-current={route.page === 'files' ? 'page' : undefined} onClick={onClose}>
          Files
        </a>
        <a href="#/keys" aria-current={route.page === 'keys' ? 'page' : undefined} onClick={onClose}>
          API keys
        </a>
        <a href="#/account" aria-current={route.page === 'account' ? 'page' : undefined} onClick={onClose}>
          Account
        </a>
        {me.isAdmin && (
          <a href="#/admin" aria-current={route.page === 'admin' ? 'page' : undefined} onClick={onClose}>
            Admin
          </a>
        )}
        {me.isAdmin && (
          <a href="#/audit" aria-current={route.page === 'audit' ? 'page' : undefined} onClick={onClose}>
            Audit log
          </a>
        )}
        <div className="account">
          <span className="email" title={me.email}>
            {me.email}
          </span>
          <button type="button" className="icon-button" aria-label={`${themeLabel[theme]}; switch to ${themeLabel[nextTheme[theme]].toLowerCase()}`} title={themeLabel[theme]} onClick={() => onThemeChange(nextTheme[theme])}>
            {theme === 'dark' ? <MoonIcon /> : theme === 'light' ? <SunIcon /> : <AutoThemeIcon />}
          </button>
          <button type="button" className="secondary" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </div>
    </nav>
  )
}
