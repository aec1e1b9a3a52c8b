import { useCallback, useEffect, useId, useState, type FormEvent } from 'react'
import { api, errorMessage } from '../api/client'
import type { SavedPrompt } from '../api/types'
import { promptsChanged } from '../lib/prompts'

interface Draft {
  id?: string
  title: string
  command: string
  text: string
}

const empty: Draft = { title: '', command: '', text: '' }

export function PromptsPage() {
  const [prompts, setPrompts] = useState<SavedPrompt[]>([])
  const [state, setState] = useState<'loading' | 'ready' | 'error'>('loading')
  const [error, setError] = useState<string | null>(null)
  const [draft, setDraft] = useState<Draft>(empty)
  const [note, setNote] = useState<string | null>(null)
  const titleId = useId()
  const commandId = useId()
  const textId = useId()

  const load = useCallback(async () => {
    try {
      const list = await api<{ items: SavedPrompt[] }>('GET', '/api/prompts')
      setPrompts(list.items ?? [])
      setState('ready')
    } catch (e) {
      setError(errorMessage(e))
      setState('error')
    }
  }, [])

  useEffect(() => {
    void load()
  }, [load])

  async function save(e: FormEvent) {
    e.preventDefault()
    setError(null)
    setNote(null)
    const body = { title: draft.title.trim(), command: draft.command.trim(), text: draft.text }
    try {
      if (draft.id) await api('PATCH', `/api/prompts/${encodeURIComponent(draft.id)}`, { body })
      else await api('POST', '/api/prompts', { body })
      setNote(draft.id ? `Saved “${body.title}”.` : `Added “${body.title}”.`)
      setDraft(empty)
      promptsChanged()
      await load()
    } catch (err) {
      setError(`Could not save the prompt: ${errorMessage(err)}`)
    }
  }

  async function remove(p: SavedPrompt) {
    setError(null)
    setNote(null)
    try {
      await api('DELETE', `/api/prompts/${encodeURIComponent(p.id)}`)
      setPrompts((list) => list.filter((x) => x.id !== p.id))
      if (draft.id === p.id) setDraft(empty)
      setNote(`Deleted “${p.title}”.`)
      promptsChanged()
    } catch (err) {
      setError(`Could not delete “${p.title}”: ${errorMessage(err)}`)
    }
  }

  return (
    <section className="page" aria-labelledby="prompts-title">
      <h1 id="prompts-title">Saved prompts</h1>
      <p className="muted">
        Type <kbd>/</kbd> in the message box to pick one of these; its text goes into the message, ready to edit and send. A command (such as{' '}
        <code>/summarise</code>) finds it faster.
      </p>
      <form className="prompt-form" onSubmit={save} aria-label={draft.id ? 'Edit the saved prompt' : 'New saved prompt'}>
        <label htmlFor={titleId}>Title</label>
        <input id={titleId} required maxLength={100} value={draft.title} onChange={(e) => setDraft((d) => ({ ...d, title: e.target.value }))} />
        <label htmlFor={commandId}>Command (optional)</label>
        <input
          id={commandId}
          maxLength={33}
          placeholder="e.g. summarise"
          pattern="/?[a-zA-Z0-9_\-]{1,32}"
          title="Letters, digits, '-' or '_' (up to 32)"
          value={draft.command}
          onChange={(e) => setDraft((d) => ({ ...d, command: e.target.value }))}
        />
        <label htmlFor={textId}>Text</label>
        <textarea id={textId} required rows={5} maxLength={20000} value={draft.text} onChange={(e) => setDraft((d) => ({ ...d, text: e.target.value }))} />
        <div className="row">
          <button type="submit" className="primary" disabled={!draft.title.trim() || !draft.text.trim()}>
            {draft.id ? 'Save changes' : 'Add prompt'}
          </button>
          {draft.id && (
            <button type="button" className="secondary" onClick={() => setDraft(empty)}>
              Cancel
            </button>
          )}
        </div>
      </form>
      {note && (
        <p className="muted" role="status">
          {note}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {state === 'loading' && <p className="muted" role="status">Loading saved prompts…</p>}
      {state !== 'loading' && (
        <ul className="prompt-list" aria-label="Your saved prompts">
          {prompts.length === 0 && <li className="muted">No saved prompts yet.</li>}
          {prompts.map((p) => (
            <li key={p.id} data-testid="saved-prompt">
              <div className="prompt-head">
                <strong>{p.title}</strong>
                {p.command && <code>/{p.command}</code>}
                <span className="row-actions">
                  <button
                    type="button"
                    className="link"
                    aria-label={`Edit “${p.title}”`}
                    onClick={() => setDraft({ id: p.id, title: p.title, command: p.command ?? '', text: p.text })}
                  >
                    Edit
                  </button>
                  <button type="button" className="link danger-link" aria-label={`Delete “${p.title}”`} onClick={() => void remove(p)}>
                    Delete
                  </button>
                </span>
              </div>
              <p className="prompt-text">{p.text}</p>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
