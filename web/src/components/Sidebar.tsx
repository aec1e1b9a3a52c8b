import { useCallback, useEffect, useId, useRef, useState, type KeyboardEvent } from 'react'
import { api, errorMessage } from '../api/client'
import type { ConversationSummary, Folder, Me, Page } from '../api/types'
import { groupByFolder, listOrder } from '../lib/folders'
import { navigate, routeHref, type Route } from '../lib/route'
import type { ThemeChoice } from '../lib/theme'
import { ArchiveIcon, AutoThemeIcon, FolderIcon, MoonIcon, MoreIcon, PencilIcon, PinIcon, SunIcon, TrashIcon } from './Icons'

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
  /** Bumped by every first-page load: pages that answer for an older list are dropped. */
  const listSeq = useRef(0)
  const reloading = useRef(false)
  const paging = useRef(false)
  /** The cursor of the page after the list on screen (the state's value, readable in callbacks). */
  const cursorRef = useRef<string | null>(null)
  const searchId = useId()
  const renameId = useId()
  const folderNameId = useId()
  /** The archive lists archived conversations only; the main view the others, grouped by folder. */
  const [archivedView, setArchivedView] = useState(false)
  const [folders, setFolders] = useState<Folder[]>([])
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set())
  /** A folder being named: 'new' for a new one, else the id of the one renamed. */
  const [folderEdit, setFolderEdit] = useState<string | null>(null)
  const [folderName, setFolderName] = useState('')

  useEffect(() => {
    const t = window.setTimeout(() => setDebouncedQuery(query.trim()), 250)
    return () => window.clearTimeout(t)
  }, [query])

  /**
   * Loads the first page (cursor null: the list is replaced) or the page after cursor (appended).
   * Every first-page load starts a new list; a page of an older list, or one asked for while the
   * list is being replaced, is dropped rather than appended to a list it does not continue.
   */
  const load = useCallback(async (cursor: string | null, q: string, archived = false) => {
    if (cursor && (reloading.current || paging.current || cursor !== cursorRef.current)) return
    const list = cursor ? listSeq.current : ++listSeq.current
    if (cursor) paging.current = true
    else reloading.current = true
    setLoading(true)
    try {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) })
      if (cursor) params.set('cursor', cursor)
      if (q) params.set('q', q)
      if (archived) params.set('archived', 'true')
      const page = await api<Page<ConversationSummary>>('GET', `/api/conversations?${params}`)
      if (list !== listSeq.current) return
      setItems((prev) => {
        const merged = cursor ? [...prev, ...page.items] : page.items
        const seen = new Set<string>()
        return merged.filter((c) => (seen.has(c.id) ? false : (seen.add(c.id), true)))
      })
      cursorRef.current = page.nextCursor ?? null
      setNextCursor(page.nextCursor ?? null)
      setError(null)
    } catch (e) {
      if (list === listSeq.current) setError(errorMessage(e))
    } finally {
      if (cursor) paging.current = false
      else if (list === listSeq.current) reloading.current = false
      setLoading(reloading.current || paging.current)
    }
  }, [])

  const loadFolders = useCallback(async () => {
    try {
      const list = await api<{ items: Folder[] }>('GET', '/api/folders')
      setFolders(list.items ?? [])
    } catch {
      // The conversations still show, ungrouped; the next list refresh tries again.
    }
  }, [])

  useEffect(() => {
    void load(null, debouncedQuery, archivedView)
  }, [load, debouncedQuery, listVersion, archivedView])

  useEffect(() => {
    void loadFolders()
  }, [loadFolders, listVersion])

  // A list that failed to load (server restarting, network down) tries again by itself.
  useEffect(() => {
    if (!error || items.length > 0) return
    const retry = window.setTimeout(() => void load(null, debouncedQuery, archivedView), 5000)
    return () => window.clearTimeout(retry)
  }, [error, items.length, load, debouncedQuery, archivedView])

  // Paging as you scroll: a sentinel at the end of the list loads the next page when it shows.
  // load() itself refuses a page while another load runs; the observer is made again when loading
  // ends, so a sentinel still in view then asks for the next page.
  useEffect(() => {
    const sentinel = sentinelRef.current
    if (!sentinel || !nextCursor) return
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) void load(nextCursor, debouncedQuery, archivedView)
      },
      { root: listRef.current, rootMargin: '120px' },
    )
    observer.observe(sentinel)
    return () => observer.disconnect()
  }, [nextCursor, loading, load, debouncedQuery, archivedView])

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
      [p.conversation, ...prev.filter((c) => c.id !== p.conversation.id)].sort(listOrder),
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

  function closeMenu(from: HTMLElement) {
    from.closest('details')?.removeAttribute('open')
  }

  /** Pin, archive or file a conversation; the list is read again so the server's order shows. */
  async function update(c: ConversationSummary, change: { pinned?: boolean; archived?: boolean; folderId?: string | null }, failure: string) {
    if (change.archived !== undefined) setItems((prev) => prev.filter((x) => x.id !== c.id))
    else setItems((prev) => prev.map((x) => (x.id === c.id ? { ...x, ...change } : x)))
    try {
      await api('PATCH', `/api/conversations/${encodeURIComponent(c.id)}`, { body: change })
      window.dispatchEvent(new CustomEvent('jackcwf:conversation-updated', { detail: { id: c.id, ...change } }))
      setError(null)
    } catch (e) {
      setError(`${failure}: ${errorMessage(e)}`)
    }
    void load(null, debouncedQuery, archivedView)
    if (change.folderId !== undefined) void loadFolders()
  }

  function startFolderEdit(folder?: Folder) {
    setFolderEdit(folder?.id ?? 'new')
    setFolderName(folder?.name ?? '')
  }

  async function saveFolder() {
    const editing = folderEdit
    const name = folderName.trim()
    setFolderEdit(null)
    if (!editing || !name) return
    try {
      if (editing === 'new') await api('POST', '/api/folders', { body: { name } })
      else await api('PATCH', `/api/folders/${encodeURIComponent(editing)}`, { body: { name } })
      setError(null)
    } catch (e) {
      setError(`Could not save the folder “${name}”: ${errorMessage(e)}`)
    }
    void loadFolders()
  }

  function onFolderKey(e: KeyboardEvent<HTMLInputElement>) {
    if (e.key === 'Enter') {
      e.preventDefault()
      void saveFolder()
    } else if (e.key === 'Escape') {
      e.preventDefault()
      setFolderEdit(null)
    }
  }

  async function deleteFolder(folder: Folder) {
    if (!window.confirm(`Delete the folder “${folder.name}”? Its conversations are kept and move out of it.`)) return
    try {
      await api('DELETE', `/api/folders/${encodeURIComponent(folder.id)}`)
      setError(null)
    } catch (e) {
      setError(`Could not delete the folder “${folder.name}”: ${errorMessage(e)}`)
    }
    void loadFolders()
    void load(null, debouncedQuery, archivedView)
  }

  function toggleFolder(id: string) {
    setCollapsed((prev) => {
      const next = new Set(prev)
      if (next.has(id)) next.delete(id)
      else next.add(id)
      return next
    })
  }

  function conversationRow(c: ConversationSummary) {
    const title = displayTitle(c)
    return (
      <li key={c.id} data-testid="conversation" data-pinned={c.pinned ? 'true' : undefined} className={c.id === activeId ? 'active' : undefined}>
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
              {c.pinned && (
                <span className="pin-mark" title="Pinned">
                  <PinIcon />
                  <span className="sr-only">Pinned: </span>
                </span>
              )}
              {title}
            </a>
            <span className="row-actions">
              <details className="menu row-menu">
                <summary className="icon-button" aria-label={`More actions for “${title}”`} title="Pin, archive, move to a folder">
                  <MoreIcon />
                </summary>
                <div className="menu-items" role="group" aria-label={`Actions for “${title}”`}>
                  <button
                    type="button"
                    className="menu-item"
                    onClick={(e) => {
                      closeMenu(e.currentTarget)
                      void update(c, { pinned: !c.pinned }, `Could not ${c.pinned ? 'unpin' : 'pin'} “${title}”`)
                    }}
                  >
                    <PinIcon /> {c.pinned ? 'Unpin' : 'Pin'}
                  </button>
                  <button
                    type="button"
                    className="menu-item"
                    onClick={(e) => {
                      closeMenu(e.currentTarget)
                      void update(c, { archived: !c.archived }, `Could not ${c.archived ? 'unarchive' : 'archive'} “${title}”`)
                    }}
                  >
                    <ArchiveIcon /> {c.archived ? 'Unarchive' : 'Archive'}
                  </button>
                  {!archivedView && (
                    <>
                      <span className="menu-heading" aria-hidden="true">
                        Move to a folder
                      </span>
                      {folders.length === 0 && <span className="muted small menu-note">No folders yet: create one with “New folder”.</span>}
                      {folders.map((f) => (
                        <button
                          key={f.id}
                          type="button"
                          className="menu-item"
                          aria-label={`Move to ${f.name}`}
                          aria-pressed={c.folderId === f.id}
                          onClick={(e) => {
                            closeMenu(e.currentTarget)
                            void update(c, { folderId: f.id }, `Could not move “${title}”`)
                          }}
                        >
                          <FolderIcon /> {f.name}
                        </button>
                      ))}
                      {c.folderId && (
                        <button
                          type="button"
                          className="menu-item"
                          onClick={(e) => {
                            closeMenu(e.currentTarget)
                            void update(c, { folderId: null }, `Could not move “${title}”`)
                          }}
                        >
                          Out of the folder
                        </button>
                      )}
                    </>
                  )}
                </div>
              </details>
              <button type="button" className="icon-button" aria-label={`Rename “${title}”`} title="Rename" onClick={() => beginRename(c)}>
                <PencilIcon />
              </button>
              <button type="button" className="icon-button" aria-label={`Delete “${title}”`} title="Delete" onClick={() => startDelete(c)}>
                <TrashIcon />
              </button>
            </span>
          </>
        )}
      </li>
    )
  }

  const groups = archivedView ? null : groupByFolder(items, folders)

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
      <div className="list-views">
        <button
          type="button"
          className="link"
          aria-pressed={archivedView}
          onClick={() => {
            setArchivedView((v) => !v)
            setItems([])
            cursorRef.current = null
            setNextCursor(null)
          }}
        >
          {archivedView ? '← All conversations' : 'Archived'}
        </button>
        {!archivedView && (
          <button type="button" className="link" onClick={() => startFolderEdit()}>
            New folder
          </button>
        )}
      </div>
      {folderEdit && (
        <div className="rename folder-edit">
          <label htmlFor={folderNameId} className="sr-only">
            Folder name
          </label>
          <input
            id={folderNameId}
            autoFocus
            placeholder="Folder name"
            value={folderName}
            maxLength={100}
            onChange={(e) => setFolderName(e.target.value)}
            onKeyDown={onFolderKey}
            onBlur={() => void saveFolder()}
          />
        </div>
      )}
      <div className="conversation-list" ref={listRef}>
        {archivedView && <h2 className="list-heading">Archived</h2>}
        {groups?.folders.map(({ folder, conversations }) => {
          const open = !collapsed.has(folder.id)
          return (
            <section key={folder.id} className="folder" data-testid="folder" aria-label={`Folder ${folder.name}`}>
              <div className="folder-head">
                <button
                  type="button"
                  className="folder-toggle"
                  aria-expanded={open}
                  onClick={() => toggleFolder(folder.id)}
                >
                  <FolderIcon />
                  <span className="folder-name">{folder.name}</span>{' '}
                  <span className="muted small">({folder.conversationCount})</span>
                </button>
                <span className="row-actions">
                  <button type="button" className="icon-button" aria-label={`Rename folder “${folder.name}”`} title="Rename folder" onClick={() => startFolderEdit(folder)}>
                    <PencilIcon />
                  </button>
                  <button type="button" className="icon-button" aria-label={`Delete folder “${folder.name}”`} title="Delete folder" onClick={() => void deleteFolder(folder)}>
                    <TrashIcon />
                  </button>
                </span>
              </div>
              {open && (
                <ul aria-label={`Conversations in ${folder.name}`}>
                  {conversations.map(conversationRow)}
                  {conversations.length < folder.conversationCount && (
                    <li className="muted small folder-more">{folder.conversationCount - conversations.length} more further down the list</li>
                  )}
                </ul>
              )}
            </section>
          )
        })}
        {groups && groups.folders.length > 0 && <h2 className="list-heading">Chats</h2>}
        <ul aria-label={archivedView ? 'Archived conversations' : 'Conversations'} aria-busy={loading}>
          {(groups ? groups.unfiled : items).map(conversationRow)}
          {nextCursor && <li ref={sentinelRef} className="sentinel" aria-hidden="true" />}
        </ul>
        {!loading && items.length === 0 && !error && (
          <p className="muted empty-list">
            {debouncedQuery ? 'No conversation matches.' : archivedView ? 'No archived conversations.' : 'No conversations yet.'}
          </p>
        )}
        {loading && <p className="muted empty-list">Loading…</p>}
        {error && (
          <p className="error small" role="alert">
            {error}{' '}
            <button type="button" className="link" onClick={() => void load(null, debouncedQuery, archivedView)}>
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
        <a href="#/prompts" aria-current={route.page === 'prompts' ? 'page' : undefined} onClick={onClose}>
          Saved prompts
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
