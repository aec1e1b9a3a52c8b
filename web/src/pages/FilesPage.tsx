import { useId, useState, type ChangeEvent } from 'react'
import { api, errorMessage } from '../api/client'
import { acceptedTypes, formatSize, uploadFile } from '../api/files'
import { useFiles } from '../components/AttachFiles'
import { formatDate } from '../lib/format'

const statusText = { processing: 'Processing…', ready: 'Ready', failed: 'Failed' } as const

/** The user's documents: upload, see their processing status, delete. */
export function FilesPage() {
  const { files, error, reload, setError } = useFiles(true)
  const [uploading, setUploading] = useState(false)
  const [confirming, setConfirming] = useState<string | null>(null)
  const inputId = useId()

  async function onUpload(e: ChangeEvent<HTMLInputElement>) {
    const file = e.target.files?.[0]
    e.target.value = ''
    if (!file) return
    setUploading(true)
    setError(null)
    try {
      await uploadFile(file)
      await reload()
    } catch (err) {
      setError(`Could not upload “${file.name}”: ${errorMessage(err)}`)
    } finally {
      setUploading(false)
    }
  }

  async function remove(id: string) {
    setConfirming(null)
    setError(null)
    try {
      await api('DELETE', `/api/files/${encodeURIComponent(id)}`)
      await reload()
    } catch (err) {
      setError(`Could not delete the file: ${errorMessage(err)}`)
    }
  }

  return (
    <section className="page" aria-labelledby="files-title">
      <h1 id="files-title">Files</h1>
      <p className="muted">
        Documents you attach to a conversation ground its answers: each answer cites the passages it was given. Text, Markdown, PDF and Word (DOCX).
      </p>
      <div className="row">
        <label htmlFor={inputId} className="button primary">
          {uploading ? 'Uploading…' : 'Upload a document'}
        </label>
        <input id={inputId} type="file" className="sr-only" accept={acceptedTypes} disabled={uploading} onChange={(e) => void onUpload(e)} />
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <table className="data-table">
        <caption>Your files</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Size</th>
            <th scope="col">Status</th>
            <th scope="col">Uploaded</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {files.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                No files yet.
              </td>
            </tr>
          )}
          {files.map((f) => (
            <tr key={f.id} data-testid="file-row" data-status={f.status}>
              <th scope="row">{f.name}</th>
              <td>{formatSize(f.size)}</td>
              <td>
                {statusText[f.status]}
                {f.status === 'ready' && ` · ${f.chunkCount} passage${f.chunkCount === 1 ? '' : 's'}`}
                {f.status === 'failed' && f.error && <span className="error"> · {f.error}</span>}
              </td>
              <td>{formatDate(f.createdAt)}</td>
              <td className="actions">
                {confirming === f.id ? (
                  <>
                    <button type="button" className="danger" onClick={() => void remove(f.id)}>
                      Delete “{f.name}” now
                    </button>
                    <button type="button" className="secondary" onClick={() => setConfirming(null)}>
                      Cancel
                    </button>
                  </>
                ) : (
                  <button type="button" className="secondary" aria-label={`Delete file “${f.name}”`} onClick={() => setConfirming(f.id)}>
                    Delete
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
