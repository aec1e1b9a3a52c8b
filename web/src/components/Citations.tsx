import { useId, useState } from 'react'
import type { Source } from '../api/types'

/**
 * The passages of attached files an answer was given, numbered as the model cites them ([1], [2], …).
 * Each number opens its snippet in place; one is open at a time.
 */
export function Citations({ sources }: { sources: Source[] }) {
  const [open, setOpen] = useState<number | null>(null)
  const panelId = useId()
  if (sources.length === 0) return null
  const shown = open === null ? undefined : sources[open]
  return (
    <div className="citations" data-testid="citations">
      <span className="muted citations-label">Sources</span>
      <ol className="citation-list">
        {sources.map((s, i) => (
          <li key={`${s.fileId}-${s.chunkIndex}`}>
            <button
              type="button"
              className={`chip citation${open === i ? ' active' : ''}`}
              data-testid="citation"
              aria-expanded={open === i}
              aria-controls={panelId}
              onClick={() => setOpen(open === i ? null : i)}
              title={`${s.fileName}, passage ${s.chunkIndex + 1}`}
            >
              <span className="citation-number">[{i + 1}]</span> {s.fileName}
            </button>
          </li>
        ))}
      </ol>
      {shown && (
        <blockquote id={panelId} className="citation-snippet" data-testid="citation-snippet">
          <p className="muted">
            [{(open ?? 0) + 1}] {shown.fileName} · passage {shown.chunkIndex + 1} · similarity {shown.score.toFixed(2)}
          </p>
          <p>{shown.snippet}</p>
        </blockquote>
      )}
    </div>
  )
}
