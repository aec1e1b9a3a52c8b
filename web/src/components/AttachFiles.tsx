import { useCallback, useEffect, useId, useRef, useState, type ChangeEvent } from 'react'
import { api, errorMessage } from '../api/client'
import { acceptedTypes, formatSize, uploadFile } from '../api/files'
import type { StoredFile } from '../api/types'

interface Props {
  /** Files already attached to the conversation. */
  attached: string[]
  /** Files picked for the next message (attached when it is sent). */
  picked: string[]
  onPickedChange: (ids: string[]) => void
  disabled?: boolean
}

const statusLabel: Record<StoredFile['status'], string> = { processing: 'Processing…', ready: 'Ready', failed: 'Failed' }

/** Lists the user's files with their processing status; a file still processing is looked at again shortly. */
export function useFiles(active: boolean) {
  const [files, setFiles] = useState<StoredFile[]>([])
  const [error, setError] = useState<string | null>(null)
  const reload = useCallback(async () => {
    try {
      const page = await api<{ items: StoredFile[] }>('GET', '/api/files')
      setFiles(page.items)
      setError(null)
    } catch (e) {
      setError(errorMessage(e))
    }
  }, [])
  useEffect(() => {
    if (active) void reload()
  }, [active, reload])
  const processing = files.some((f) => f.status === 'processing')
  useEffect(() => {
    if (!active || !processing) return
    const timer = window.setTimeout(() => void reload(), 1500)
    return () => window.clearTimeout(timer)
  }, [active, processing, files, reload])
  return { files, error, reload, setError }
}

/** The composer's attach control: upload a document or pick one of yours; chips show what the conversation uses. */
export function AttachFiles({ attached, picked, onPickedChange, disabled }: Props) {
  const [open, setOpen] = useState(false)
  const [uploading, setUploading] = useState(false)
  const { files, error, reload, setError } = useFiles(open || picked.length > 0 || attached.length > 0)
  const inputId = useId()
  const panelId = useId()
  const inputRef = useRef<HTMLInputElement>(null)

  async function onUpload(e: ChangeEvent<HTMLInputElement>) {
    const file = e.target.files?.[0]
    e.target.value = ''
    if (!file) return
    setUploading(true)
    try {
      const stored = await uploadFile(file)
      onPickedChange([...picked.filter((id) => id !== stored.id), stored.id])
      await reload()
    } catch (err) {
      setError(errorMessage(err))
    } finally {
      setUploading(false)
    }
  }

  function toggle(id: string) {
    onPickedChange(picked.includes(id) ? picked.filter((x) => x !== id) : [...picked, id])
  }

  const byId = new Map(files.map((f) => [f.id, f]))
  const chips = [...attached.map((id) => ({ id, pending: false })), ...picked.filter((id) => !attached.includes(id)).map((id) => ({ id, pending: true }))]
  return (
    <div className="attach">
      {chips.length > 0 && (
        <ul className="attach-chips" aria-label="Attached files">
          {chips.map(({ id, pending }) => {
            const f = byId.get(id)
            return (
              <li key={id} className={`attach-chip${pending ? ' pending' : ''}`} data-testid="attached-file" data-status={f?.status}>
                <span>{f?.name ?? 'File'}</span>
                {f && f.status !== 'ready' && <span className="muted"> · {statusLabel[f.status]}</span>}
                {pending && (
                  <button type="button" className="icon-button" aria-label={`Remove ${f?.name ?? 'file'}`} onClick={() => toggle(id)}>
                    ×
                  </button>
                )}
              </li>
            )
          })}
        </ul>
      )}
      <button
        type="button"
        className="chip attach-button"
        aria-expanded={open}
        aria-controls={panelId}
        disabled={disabled}
        onClick={() => setOpen((o) => !o)}
      >
        Attach
      </button>
      {open && (
        <div id={panelId} className="attach-panel" role="group" aria-label="Attach documents">
          <label htmlFor={inputId} className="button secondary">
            {uploading ? 'Uploading…' : 'Upload a document'}
          </label>
          <input
            id={inputId}
            ref={inputRef}
            type="file"
            className="sr-only"
            accept={acceptedTypes}
            data-testid="file-input"
            disabled={uploading}
            onChange={(e) => void onUpload(e)}
          />
          <p className="muted">Text, Markdown, PDF or Word (DOCX). Answers cite the passages they use.</p>
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          {files.length > 0 && (
            <ul className="attach-list">
              {files.map((f) => {
                const isAttached = attached.includes(f.id)
                return (
                  <li key={f.id}>
                    <label>
                      <input
                        type="checkbox"
                        checked={isAttached || picked.includes(f.id)}
                        disabled={isAttached || f.status === 'failed'}
                        onChange={() => toggle(f.id)}
                      />
                      <span>{f.name}</span>
                      <span className="muted">
                        {formatSize(f.size)} · {f.status === 'failed' ? f.error || statusLabel.failed : statusLabel[f.status]}
                      </span>
                    </label>
                  </li>
                )
              })}
            </ul>
          )}
        </div>
      )}
    </div>
  )
}
