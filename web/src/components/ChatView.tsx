import { useCallback, useEffect, useId, useLayoutEffect, useMemo, useRef, useState } from 'react'
import { api, ApiError, describeProblem, errorMessage } from '../api/client'
import type { Conversation, Feedback, Message, ModelInfo, Problem, Rating } from '../api/types'
import { followMessage, newId, streamMessage, type SendBody, type StreamHandlers, type StreamOutcome } from '../lib/chatStream'
import { modelPriceLabel } from '../lib/format'
import { conversationPageUrl, mergeMessages, refreshNewest } from '../lib/pages'
import { navigate } from '../lib/route'
import { activePath, buildTree, ROOT, selectPathTo } from '../lib/tree'
import { AttachFiles } from './AttachFiles'
import { Composer } from './Composer'
import { MoreIcon } from './Icons'
import { MessageItem } from './MessageItem'
import { ShareButton } from './ShareButton'
import { displayTitle } from './Sidebar'

interface Props {
  conversationId?: string
  models: ModelInfo[]
  onConversationsChanged: () => void
}

type Phase = 'sending' | 'streaming' | 'reconnecting' | 'stopping'

const LAST_MODEL_KEY = 'jackcwf-model'
const CONTINUE_PROMPT = 'Please continue from where you stopped.'

function lastModel(): string {
  try {
    return localStorage.getItem(LAST_MODEL_KEY) ?? ''
  } catch {
    return ''
  }
}

function rememberModel(id: string) {
  try {
    localStorage.setItem(LAST_MODEL_KEY, id)
  } catch {
    // Storage disabled: the choice lasts for this page only.
  }
}

export function ChatView({ conversationId, models, onConversationsChanged }: Props) {
  const [conversation, setConversation] = useState<Conversation | null>(null)
  const [messages, setMessages] = useState<Message[]>([])
  /** Cursor of the messages before those shown; null once the first message is on screen. */
  const [olderCursor, setOlderCursor] = useState<string | null>(null)
  const [loadingOlder, setLoadingOlder] = useState(false)
  const [selected, setSelected] = useState<Map<string, string>>(() => new Map())
  const [loading, setLoading] = useState(false)
  const [loadError, setLoadError] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [draft, setDraft] = useState('')
  // Files picked in the composer, attached to the conversation with the next message.
  // Picked for one conversation: opening another starts with none.
  const [picked, setPicked] = useState<{ conversationId?: string; ids: string[] }>({ ids: [] })
  const pickedFiles = picked.conversationId === conversationId ? picked.ids : []
  const setPickedFiles = (ids: string[]) => setPicked({ conversationId, ids })
  const [phase, setPhase] = useState<Phase | null>(null)
  const [announcement, setAnnouncement] = useState('')
  const [model, setModel] = useState<string>(lastModel)
  const [showSettings, setShowSettings] = useState(false)
  const [toolsOpen, setToolsOpen] = useState(false)
  const [systemPrompt, setSystemPrompt] = useState('')
  const [settingsNote, setSettingsNote] = useState<string | null>(null)
  const abortRef = useRef<AbortController | null>(null)
  const assistantIdRef = useRef<string | null>(null)
  const createdIdRef = useRef<string | null>(null)
  const scrollerRef = useRef<HTMLDivElement>(null)
  const stickToBottom = useRef(true)
  /** Distance from the bottom to keep while earlier messages are put above the ones being read. */
  const keepFromBottom = useRef<number | null>(null)
  const modelId = useId()
  const promptId = useId()
  const conversationRef = useRef<Conversation | null>(null)
  conversationRef.current = conversation

  const tree = useMemo(() => buildTree(messages), [messages])
  // A conversation keeps its model; a new chat uses the last pick if it still exists, else the default.
  const fallbackModel = models.find((m) => m.isDefault)?.id ?? models[0]?.id ?? ''
  const chosenModel = conversation
    ? model || conversation.model || fallbackModel
    : model && (models.length === 0 || models.some((m) => m.id === model))
      ? model
      : fallbackModel
  const path = useMemo(() => activePath(tree, selected), [tree, selected])
  const busy = phase !== null

  // Message ids change when the server confirms a message: keep the chosen branches pointing at it.
  const replaceMessage = useCallback((oldId: string, next: Partial<Message> & { id: string }) => {
    setMessages((prev) =>
      prev.map((m) => (m.id === oldId ? { ...m, ...next } : m.parentMessageId === oldId ? { ...m, parentMessageId: next.id } : m)),
    )
    if (oldId !== next.id) {
      setSelected((prev) => {
        const map = new Map<string, string>()
        for (const [k, v] of prev) map.set(k === oldId ? next.id : k, v === oldId ? next.id : v)
        return map
      })
    }
  }, [])

  const patchMessage = useCallback((id: string, patch: (m: Message) => Partial<Message>) => {
    setMessages((prev) => prev.map((m) => (m.id === id ? { ...m, ...patch(m) } : m)))
  }, [])

  /** Reads the conversation; `quiet` keeps what is on screen when that fails (a refresh, not a first load). */
  const load = useCallback(async (id: string, signal?: AbortSignal, quiet = false): Promise<Conversation | null> => {
    try {
      // The newest page only: a long conversation loads earlier pages when the reader asks.
      const c = await api<Conversation>('GET', conversationPageUrl(id), { signal })
      setConversation(c)
      if (quiet) {
        setMessages((prev) => refreshNewest(prev, c.messages ?? [], !c.nextCursor))
      } else {
        setMessages(c.messages ?? [])
        setOlderCursor(c.nextCursor ?? null)
      }
      setSystemPrompt(c.systemPrompt ?? '')
      if (c.model) setModel(c.model)
      setLoadError(null)
      return c
    } catch (e) {
      if (signal?.aborted) return null
      const message = e instanceof ApiError && e.status === 404 ? 'This conversation does not exist, or it was deleted.' : errorMessage(e)
      if (quiet) setError(message)
      else setLoadError(message)
      return null
    }
  }, [])

  const streamHandlers = useCallback(
    (ids: { user: string; assistant: string }): StreamHandlers => ({
      onUser: (m) => {
        replaceMessage(ids.user, m)
        ids.user = m.id
      },
      onStart: (id) => {
        replaceMessage(ids.assistant, { id, parentMessageId: ids.user })
        ids.assistant = id
        assistantIdRef.current = id
        setPhase((p) => (p === 'stopping' ? p : 'streaming'))
        setAnnouncement('Answering…')
      },
      onDelta: (text) => {
        patchMessage(ids.assistant, (m) => ({ content: m.content + text }))
        setPhase((p) => (p === 'reconnecting' ? 'streaming' : p))
      },
      onDone: (m) => {
        replaceMessage(ids.assistant, m)
        ids.assistant = m.id
        setAnnouncement(m.status === 'stopped' ? 'Answer stopped.' : 'Answer complete.')
      },
      onError: (problem: Problem) => {
        const status = problem.messageStatus === 'interrupted' ? 'interrupted' : 'failed'
        patchMessage(ids.assistant, (m) => ({ status, content: problem.content ?? m.content }))
        if (status === 'interrupted') {
          setError('The answer was interrupted before it finished (the server restarted or lost the model). Continue it or regenerate it.')
          setAnnouncement('The answer was interrupted.')
        } else {
          setError(`The answer failed: ${describeProblem(problem.status ?? 500, problem)} You can regenerate it.`)
          setAnnouncement('The answer failed.')
        }
      },
      onReconnecting: (attempt) => {
        setPhase((p) => (p === 'stopping' ? p : 'reconnecting'))
        setAnnouncement(attempt === 1 ? 'Connection lost. Reconnecting…' : `Still reconnecting (attempt ${attempt})…`)
      },
      onReconnected: () => setAnnouncement('Reconnected.'),
    }),
    [patchMessage, replaceMessage],
  )

  /** Handles the end of a stream that did not finish normally, by asking the server what it stored. */
  const settle = useCallback(
    async (convId: string, outcome: StreamOutcome, assistantId: string) => {
      // `done` and `error` carry the stored message: nothing more to ask the server.
      if (outcome === 'done' || outcome === 'error') return
      if (outcome === 'aborted') {
        patchMessage(assistantId, (m) => (m.status === 'streaming' ? { status: 'stopped' } : {}))
        setAnnouncement('Answer stopped.')
      }
      if (outcome === 'lost') {
        setError('The connection to the server was lost and could not be restored. Reload the page when the server is back; what it saved will be shown.')
      }
      // Give the server a moment to store the final state before reading it back.
      await new Promise((r) => setTimeout(r, outcome === 'aborted' ? 400 : 0))
      if (conversationRef.current?.id === convId) {
        const c = await load(convId, undefined, true)
        if (c && outcome === 'aborted') {
          // The server may still be finishing its stop; show the partial text as stopped meanwhile.
          setMessages((prev) => prev.map((m) => (m.id === assistantId && m.status === 'streaming' ? { ...m, status: 'stopped' } : m)))
        }
      }
    },
    [load, patchMessage],
  )

  /** Attaches to an answer that is still being generated, e.g. after reloading the page mid-answer. */
  const follow = useCallback(
    async (convId: string, assistant: Message) => {
      if (abortRef.current) return
      const controller = new AbortController()
      abortRef.current = controller
      assistantIdRef.current = assistant.id
      setPhase('streaming')
      patchMessage(assistant.id, () => ({ content: '' }))
      const ids = { user: assistant.parentMessageId ?? '', assistant: assistant.id }
      let outcome: StreamOutcome = 'lost'
      try {
        outcome = await followMessage(convId, assistant.id, streamHandlers(ids), { signal: controller.signal })
      } finally {
        if (abortRef.current === controller) abortRef.current = null
        assistantIdRef.current = null
        setPhase(null)
      }
      await settle(convId, outcome, ids.assistant)
    },
    [patchMessage, settle, streamHandlers],
  )

  useEffect(() => {
    const onRenamed = (e: Event) => {
      const { id, title } = (e as CustomEvent<{ id: string; title: string }>).detail
      setConversation((c) => (c && c.id === id ? { ...c, title } : c))
    }
    // Pinned, archived or moved from the sidebar.
    const onUpdated = (e: Event) => {
      const { id, ...change } = (e as CustomEvent<{ id: string; pinned?: boolean; archived?: boolean; folderId?: string | null }>).detail
      setConversation((c) => (c && c.id === id ? { ...c, ...change } : c))
    }
    window.addEventListener('jackcwf:conversation-renamed', onRenamed)
    window.addEventListener('jackcwf:conversation-updated', onUpdated)
    return () => {
      window.removeEventListener('jackcwf:conversation-renamed', onRenamed)
      window.removeEventListener('jackcwf:conversation-updated', onUpdated)
    }
  }, [])

  useEffect(() => {
    // The conversation this view just created: it is already on screen and maybe streaming.
    if (conversationId && conversationId === createdIdRef.current) return
    createdIdRef.current = null
    abortRef.current?.abort()
    abortRef.current = null
    setPhase(null)
    setError(null)
    setLoadError(null)
    setSelected(new Map())
    setShowSettings(false)
    stickToBottom.current = true
    if (!conversationId) {
      setConversation(null)
      setMessages([])
      setOlderCursor(null)
      setSystemPrompt('')
      setModel(lastModel())
      return
    }
    const controller = new AbortController()
    setLoading(true)
    setConversation(null)
    setMessages([])
    setOlderCursor(null)
    void load(conversationId, controller.signal).then((c) => {
      setLoading(false)
      if (!c) return
      const shown = activePath(buildTree(c.messages ?? []), new Map())
      const last = shown.at(-1)?.message
      if (last && last.role === 'assistant' && last.status === 'streaming') void follow(c.id, last)
    })
    return () => controller.abort()
  }, [conversationId, load, follow])

  useEffect(() => () => abortRef.current?.abort(), [])

  // Esc stops the answer wherever the focus is.
  useEffect(() => {
    if (!busy) return
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') void stop()
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  })

  useEffect(() => {
    const el = scrollerRef.current
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight
  }, [messages, path.length])

  // Earlier messages appear above without moving the ones being read.
  useLayoutEffect(() => {
    const el = scrollerRef.current
    if (el && keepFromBottom.current !== null) {
      el.scrollTop = el.scrollHeight - keepFromBottom.current
      keepFromBottom.current = null
    }
  }, [messages])

  async function loadOlder() {
    const id = conversation?.id
    if (!id || !olderCursor || loadingOlder) return
    setLoadingOlder(true)
    try {
      const page = await api<Conversation>('GET', conversationPageUrl(id, olderCursor))
      if (conversationRef.current?.id !== id) return
      const el = scrollerRef.current
      stickToBottom.current = false
      keepFromBottom.current = el ? el.scrollHeight - el.scrollTop : null
      setMessages((prev) => mergeMessages(page.messages ?? [], prev))
      setOlderCursor(page.nextCursor ?? null)
    } catch (e) {
      setError(errorMessage(e))
    } finally {
      setLoadingOlder(false)
    }
  }

  function onScroll() {
    const el = scrollerRef.current
    if (!el) return
    stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80
  }

  /**
   * Sends `content` as a child of `parentMessageId` (undefined: after the newest message, null: a
   * new first message). With `regenerateOf` set, no user message is added: the server answers that
   * user message again, as a sibling of its earlier answers.
   */
  async function send(content: string, parentMessageId: string | null | undefined, regenerateOf?: Message) {
    if (abortRef.current) return
    setError(null)
    stickToBottom.current = true
    let convId = conversation?.id
    const controller = new AbortController()
    abortRef.current = controller
    setPhase('sending')
    if (!convId) {
      try {
        const created = await api<Conversation>('POST', '/api/conversations', {
          body: { model: chosenModel || undefined, systemPrompt: systemPrompt.trim() || undefined },
        })
        createdIdRef.current = created.id
        setConversation({ ...created, messages: [] })
        if (created.model) setModel(created.model)
        convId = created.id
        navigate({ page: 'chat', conversationId: created.id }, true)
        onConversationsChanged()
      } catch (e) {
        abortRef.current = null
        setPhase(null)
        setDraft((d) => d || content)
        setError(`Could not start the conversation: ${errorMessage(e)}`)
        return
      }
    }

    const now = Date.now()
    const user: Message = regenerateOf ?? {
      id: `tmp-user-${newId()}`,
      role: 'user',
      content,
      status: 'complete',
      parentMessageId: parentMessageId ?? null,
      createdAt: new Date(now).toISOString(),
    }
    const assistant: Message = {
      id: `tmp-assistant-${newId()}`,
      role: 'assistant',
      content: '',
      status: 'streaming',
      parentMessageId: user.id,
      createdAt: new Date(now + 1).toISOString(),
      model: chosenModel || undefined,
    }
    setMessages((prev) => (regenerateOf ? [...prev, assistant] : [...prev, user, assistant]))
    setSelected((prev) => {
      const next = regenerateOf ? selectPathTo(tree, prev, regenerateOf.id) : new Map(prev)
      if (!regenerateOf) next.set(parentMessageId ?? ROOT, user.id)
      next.set(user.id, assistant.id)
      return next
    })
    setAnnouncement('Sending…')
    assistantIdRef.current = null

    const ids = { user: user.id, assistant: assistant.id }
    let outcome: StreamOutcome | null = null
    try {
      const body: SendBody = { content }
      if (chosenModel) body.model = chosenModel
      const attaching = pickedFiles
      if (attaching.length > 0) body.fileIds = attaching
      if (regenerateOf) body.parentMessageId = regenerateOf.id
      else if (parentMessageId !== undefined) body.parentMessageId = parentMessageId
      outcome = await streamMessage(convId, body, streamHandlers(ids), { signal: controller.signal, idempotencyKey: newId() })
      if (attaching.length > 0) {
        // The server attached them with the message: they are the conversation's now.
        setConversation((c) => (c ? { ...c, fileIds: [...(c.fileIds ?? []), ...attaching.filter((f) => !(c.fileIds ?? []).includes(f))] } : c))
        setPicked((p) => ({ ...p, ids: p.ids.filter((f) => !attaching.includes(f)) }))
      }
    } catch (e) {
      // Nothing was stored: take the optimistic messages back and keep the text for another try.
      setMessages((prev) => prev.filter((m) => m.id !== ids.assistant && (regenerateOf || m.id !== ids.user)))
      if (!regenerateOf) setDraft((d) => d || content)
      setError(errorMessage(e))
      setAnnouncement('The message was not sent.')
    } finally {
      if (abortRef.current === controller) abortRef.current = null
      assistantIdRef.current = null
      setPhase(null)
    }
    if (outcome) await settle(convId, outcome, ids.assistant)
    onConversationsChanged()
  }

  async function stop() {
    const controller = abortRef.current
    if (!controller) return
    const assistantId = assistantIdRef.current
    const convId = conversationRef.current?.id
    setPhase('stopping')
    setAnnouncement('Stopping…')
    if (!assistantId || !convId) {
      controller.abort()
      return
    }
    try {
      await api('POST', `/api/conversations/${encodeURIComponent(convId)}/messages/${encodeURIComponent(assistantId)}/stop`)
    } catch {
      // 409 means it already finished; any other failure: stop reading anyway.
      controller.abort()
      return
    }
    // The server ends the stream with the stopped message; stop reading if that takes too long.
    window.setTimeout(() => {
      if (abortRef.current === controller) controller.abort()
    }, 3000)
  }

  function sendDraft() {
    const content = draft.trim()
    if (!content) return
    setDraft('')
    const leaf = path.at(-1)?.message
    void send(content, leaf && !leaf.id.startsWith('tmp-') ? leaf.id : undefined)
  }

  async function rateAnswer(message: Message, rating: Rating | null, comment?: string) {
    const convId = conversationRef.current?.id
    if (!convId) return
    const url = `/api/conversations/${encodeURIComponent(convId)}/messages/${encodeURIComponent(message.id)}/feedback`
    try {
      if (rating === null) {
        await api('DELETE', url)
        patchMessage(message.id, () => ({ feedback: null }))
        setAnnouncement('Rating removed.')
      } else {
        const saved = await api<Feedback>('PUT', url, { body: comment ? { rating, comment } : { rating } })
        patchMessage(message.id, () => ({ feedback: saved }))
        setAnnouncement(rating === 'up' ? 'Marked as a good answer.' : 'Marked as a bad answer.')
      }
    } catch (e) {
      setError(`Could not save your rating: ${errorMessage(e)}`)
    }
  }

  async function unarchive() {
    const id = conversationRef.current?.id
    if (!id) return
    try {
      await api('PATCH', `/api/conversations/${encodeURIComponent(id)}`, { body: { archived: false } })
      setConversation((c) => (c && c.id === id ? { ...c, archived: false } : c))
      onConversationsChanged()
    } catch (e) {
      setError(`Could not unarchive: ${errorMessage(e)}`)
    }
  }

  function switchBranch(sibling: Message) {
    setSelected((prev) => selectPathTo(tree, prev, sibling.id))
  }

  function regenerate(assistant: Message) {
    const user = assistant.parentMessageId ? tree.byId.get(assistant.parentMessageId) : undefined
    if (!user || user.role !== 'user') return
    void send('', user.id, user)
  }

  async function changeModel(id: string) {
    setModel(id)
    rememberModel(id)
    if (!conversation) return
    try {
      await api('PATCH', `/api/conversations/${encodeURIComponent(conversation.id)}`, { body: { model: id } })
    } catch (e) {
      setError(`Could not change the model: ${errorMessage(e)}`)
    }
  }

  async function saveSystemPrompt() {
    setSettingsNote(null)
    if (!conversation) {
      setSettingsNote('Will be used when you send the first message.')
      return
    }
    try {
      const updated = await api<Conversation>('PATCH', `/api/conversations/${encodeURIComponent(conversation.id)}`, {
        body: { systemPrompt: systemPrompt.trim() },
      })
      setConversation((c) => (c ? { ...c, systemPrompt: updated?.systemPrompt ?? systemPrompt.trim() } : c))
      setSettingsNote('Saved.')
    } catch (e) {
      setSettingsNote(`Not saved: ${errorMessage(e)}`)
    }
  }

  const title = conversation
    ? displayTitle({ title: conversation.title || path.find((p) => p.message.role === 'user')?.message.content.slice(0, 60) })
    : 'New chat'
  const modelKnown = models.some((m) => m.id === chosenModel)
  const status =
    phase === 'reconnecting' ? 'Reconnecting…' : phase === 'stopping' ? 'Stopping…' : phase === 'sending' ? 'Sending…' : phase === 'streaming' ? 'Answering…' : ''

  if (loadError) {
    return (
      <section className="chat">
        <div className="page-message" role="alert">
          <p>{loadError}</p>
          <a className="button primary" href="#/">
            Start a new chat
          </a>
        </div>
      </section>
    )
  }

  return (
    <section className="chat" aria-labelledby="chat-title">
      <header className={`chat-header${toolsOpen ? ' tools-open' : ''}`}>
        <h1 id="chat-title" className="chat-title" title={title}>
          {title}
        </h1>
        <button
          type="button"
          className="icon-button tools-toggle"
          aria-label="Chat options"
          aria-expanded={toolsOpen}
          aria-controls="chat-tools"
          onClick={() => setToolsOpen((o) => !o)}
        >
          <MoreIcon />
        </button>
        <div className="chat-tools" id="chat-tools">
          <label htmlFor={modelId} className="sr-only">
            Model
          </label>
          <select id={modelId} value={chosenModel} onChange={(e) => void changeModel(e.target.value)} disabled={busy}>
            {!modelKnown && <option value={chosenModel}>{chosenModel || 'Default model'}</option>}
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.displayName || m.id} — {modelPriceLabel(m)}
              </option>
            ))}
          </select>
          <button type="button" className="secondary" aria-expanded={showSettings} aria-controls="chat-settings" onClick={() => setShowSettings((s) => !s)}>
            System prompt
          </button>
          {conversation && <ShareButton conversationId={conversation.id} leafMessageId={path.at(-1)?.message.id} disabled={busy || path.length === 0} />}
          {conversation && (
            <details className="menu">
              <summary className="button secondary">Export</summary>
              <div className="menu-items">
                <a href={`/api/conversations/${encodeURIComponent(conversation.id)}/export?format=markdown`} download>
                  Markdown (.md)
                </a>
                <a href={`/api/conversations/${encodeURIComponent(conversation.id)}/export?format=json`} download>
                  JSON (.json)
                </a>
              </div>
            </details>
          )}
        </div>
      </header>
      {showSettings && (
        <div id="chat-settings" className="settings-panel">
          <label htmlFor={promptId}>System prompt</label>
          <textarea
            id={promptId}
            rows={3}
            value={systemPrompt}
            placeholder="Instructions the model follows in this conversation"
            onChange={(e) => setSystemPrompt(e.target.value)}
          />
          <div className="row">
            <button type="button" className="primary" onClick={() => void saveSystemPrompt()}>
              Save
            </button>
            {settingsNote && (
              <span className="muted" role="status">
                {settingsNote}
              </span>
            )}
          </div>
        </div>
      )}
      {conversation?.archived && (
        <div className="archived-banner" role="status">
          <span>This conversation is archived: it is listed under Archived, not with the others.</span>
          <button type="button" className="link" onClick={() => void unarchive()}>
            Unarchive
          </button>
        </div>
      )}
      <div className="messages-scroller" ref={scrollerRef} onScroll={onScroll}>
        {loading ? (
          <p className="muted center">Loading conversation…</p>
        ) : path.length === 0 ? (
          <div className="empty-chat">
            <h2>How can I help?</h2>
            <p className="muted">Answers stream as they are written. Enter sends, Shift+Enter adds a line, Esc stops.</p>
          </div>
        ) : (
          <>
            {olderCursor && (
              <button type="button" className="load-earlier" onClick={() => void loadOlder()} disabled={loadingOlder}>
                {loadingOlder ? 'Loading earlier messages…' : 'Load earlier messages'}
              </button>
            )}
            <ol className="messages" aria-label="Messages">
              {path.map((entry) => (
                <MessageItem
                  key={entry.message.id}
                  entry={entry}
                  busy={busy}
                  reconnecting={phase === 'reconnecting'}
                  onSwitchBranch={switchBranch}
                  onEdit={(m, content) => void send(content, m.parentMessageId ?? null)}
                  onRegenerate={regenerate}
                  onContinue={(m) => void send(CONTINUE_PROMPT, m.id)}
                  onRate={rateAnswer}
                />
              ))}
            </ol>
          </>
        )}
      </div>
      {error && (
        <div className="error-banner" role="alert">
          <span>{error}</span>
          <button type="button" className="link" onClick={() => setError(null)}>
            Dismiss
          </button>
        </div>
      )}
      <div className="sr-only" role="status" aria-live="polite">
        {announcement}
      </div>
      <Composer
        value={draft}
        onChange={setDraft}
        onSend={sendDraft}
        onStop={() => void stop()}
        streaming={busy}
        status={status}
        attachments={<AttachFiles attached={conversation?.fileIds ?? []} picked={pickedFiles} onPickedChange={setPickedFiles} disabled={busy} />}
      />
    </section>
  )
}
