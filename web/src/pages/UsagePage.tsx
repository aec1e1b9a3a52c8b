import { useEffect, useId, useMemo, useState } from 'react'
import { api, errorMessage, isNotFound } from '../api/client'
import type { DayUsageRow, UsageReport } from '../api/types'
import { formatNumber, formatUsd, isoDay } from '../lib/format'

type Metric = 'tokens' | 'cost' | 'requests'
const MAX_DAYS = 92
const SERIES = 6

function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00`)
  d.setDate(d.getDate() + n)
  return isoDay(d)
}

/** Every day of the range, with zeros where nothing was used, so gaps show as gaps. */
export function fillDays(from: string, to: string, rows: DayUsageRow[]): DayUsageRow[] {
  const byDate = new Map(rows.map((r) => [r.date, r]))
  const days: DayUsageRow[] = []
  for (let d = from; d <= to && days.length < MAX_DAYS; d = addDays(d, 1)) {
    days.push(byDate.get(d) ?? { date: d, inputTokens: 0, outputTokens: 0, costUsd: 0, requests: 0 })
  }
  return days
}

function metricOf(metric: Metric, r: { inputTokens: number; outputTokens: number; costUsd: number; requests: number }): number {
  return metric === 'tokens' ? r.inputTokens + r.outputTokens : metric === 'cost' ? r.costUsd : r.requests
}

function formatMetric(metric: Metric, v: number): string {
  return metric === 'cost' ? formatUsd(v) : formatNumber(Math.round(v))
}

const metricName: Record<Metric, string> = { tokens: 'Tokens', cost: 'Cost (USD)', requests: 'Requests' }

export function UsagePage() {
  const today = new Date()
  const [from, setFrom] = useState(isoDay(new Date(today.getFullYear(), today.getMonth(), 1)))
  const [to, setTo] = useState(isoDay(today))
  const [report, setReport] = useState<UsageReport | null>(null)
  const [metric, setMetric] = useState<Metric>('tokens')
  const [state, setState] = useState<'loading' | 'ready' | 'missing' | 'error'>('loading')
  const [error, setError] = useState<string | null>(null)
  const fromId = useId()
  const toId = useId()
  const metricId = useId()

  useEffect(() => {
    let cancelled = false
    setState('loading')
    api<UsageReport>('GET', `/api/usage?${new URLSearchParams({ from, to })}`)
      .then((r) => {
        if (cancelled) return
        setReport(r)
        setState('ready')
      })
      .catch((e: unknown) => {
        if (cancelled) return
        if (isNotFound(e)) setState('missing')
        else {
          setError(errorMessage(e))
          setState('error')
        }
      })
    return () => {
      cancelled = true
    }
  }, [from, to])

  const days = useMemo(() => fillDays(from, to, report?.byDay ?? []), [from, to, report])
  const byModel = report?.byModel ?? []

  return (
    <section className="page" aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <div className="filters">
        <label htmlFor={fromId}>From</label>
        <input id={fromId} type="date" value={from} max={to} onChange={(e) => e.target.value && setFrom(e.target.value)} />
        <label htmlFor={toId}>To</label>
        <input id={toId} type="date" value={to} min={from} onChange={(e) => e.target.value && setTo(e.target.value)} />
        <label htmlFor={metricId}>Show</label>
        <select id={metricId} value={metric} onChange={(e) => setMetric(e.target.value as Metric)}>
          <option value="tokens">Tokens</option>
          <option value="cost">Cost (USD)</option>
          <option value="requests">Requests</option>
        </select>
      </div>
      {state === 'loading' && (
        <p className="muted" role="status">
          Loading usage…
        </p>
      )}
      {state === 'missing' && <p className="muted">Usage reporting is not available on this server.</p>}
      {state === 'error' && (
        <p className="error" role="alert">
          Could not load usage: {error}
        </p>
      )}
      {state === 'ready' && report && (
        <>
          <div className="cards">
            <div className="card">
              <span className="card-label">Requests</span>
              <span className="card-value" data-testid="usage-requests">
                {formatNumber(report.totals?.requests)}
              </span>
            </div>
            <div className="card">
              <span className="card-label">Input tokens</span>
              <span className="card-value">{formatNumber(report.totals?.inputTokens)}</span>
            </div>
            <div className="card">
              <span className="card-label">Output tokens</span>
              <span className="card-value">{formatNumber(report.totals?.outputTokens)}</span>
            </div>
            <div className="card">
              <span className="card-label">Cost</span>
              <span className="card-value">{formatUsd(report.totals?.costUsd)}</span>
            </div>
            <div className="card">
              <span className="card-label">Cached answers</span>
              <span className="card-value" data-testid="usage-cached">
                {formatNumber(report.totals?.cachedRequests ?? 0)}
              </span>
            </div>
            <div className="card">
              <span className="card-label">Tokens saved by the cache</span>
              <span className="card-value" data-testid="usage-tokens-saved">
                {formatNumber(report.totals?.tokensSaved ?? 0)}
              </span>
            </div>
          </div>
          <DailyChart days={days} metric={metric} />
          <ModelChart rows={byModel} metric={metric} />
          <table className="data-table">
            <caption>By model</caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Requests</th>
                <th scope="col">Input tokens</th>
                <th scope="col">Output tokens</th>
                <th scope="col">Cost</th>
              </tr>
            </thead>
            <tbody>
              {byModel.length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    No usage in this period.
                  </td>
                </tr>
              )}
              {byModel.map((r) => (
                <tr key={r.model}>
                  <th scope="row">{r.model}</th>
                  <td>{formatNumber(r.requests)}</td>
                  <td>{formatNumber(r.inputTokens)}</td>
                  <td>{formatNumber(r.outputTokens)}</td>
                  <td>{formatUsd(r.costUsd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  )
}

/** One bar per day, drawn as SVG: small, and nothing in it conflicts with the CSP. */
function DailyChart({ days, metric }: { days: DayUsageRow[]; metric: Metric }) {
  const values = days.map((d) => metricOf(metric, d))
  const max = Math.max(0, ...values)
  const width = 640
  const height = 200
  const pad = { left: 56, right: 8, top: 12, bottom: 26 }
  const plotW = width - pad.left - pad.right
  const plotH = height - pad.top - pad.bottom
  const slot = days.length > 0 ? plotW / days.length : plotW
  const barW = Math.max(1.5, slot * 0.7)
  const labelEvery = Math.max(1, Math.ceil(days.length / 8))
  const summary = `${metricName[metric]} per day from ${days[0]?.date ?? ''} to ${days.at(-1)?.date ?? ''}; busiest day ${formatMetric(metric, max)}.`

  return (
    <figure className="chart">
      <figcaption className="chart-title">{metricName[metric]} per day</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={summary} preserveAspectRatio="none">
        <line x1={pad.left} x2={width - pad.right} y1={pad.top + plotH} y2={pad.top + plotH} className="axis" />
        <line x1={pad.left} x2={width - pad.right} y1={pad.top} y2={pad.top} className="grid" />
        <text x={pad.left - 6} y={pad.top + 4} className="tick" textAnchor="end">
          {formatMetric(metric, max)}
        </text>
        <text x={pad.left - 6} y={pad.top + plotH} className="tick" textAnchor="end">
          0
        </text>
        {days.map((d, i) => {
          const h = max > 0 ? (values[i] / max) * plotH : 0
          const x = pad.left + i * slot + (slot - barW) / 2
          return (
            <g key={d.date}>
              <title>{`${d.date}: ${formatMetric(metric, values[i])}`}</title>
              <rect x={x} y={pad.top + plotH - h} width={barW} height={h} className="series-0" />
              {i % labelEvery === 0 && (
                <text x={x + barW / 2} y={height - 8} className="tick" textAnchor="middle">
                  {d.date.slice(5)}
                </text>
              )}
            </g>
          )
        })}
      </svg>
    </figure>
  )
}

function ModelChart({ rows, metric }: { rows: { model: string; inputTokens: number; outputTokens: number; costUsd: number; requests: number }[]; metric: Metric }) {
  if (rows.length === 0) return null
  const values = rows.map((r) => metricOf(metric, r))
  const max = Math.max(0, ...values)
  return (
    <figure className="chart">
      <figcaption className="chart-title">{metricName[metric]} by model</figcaption>
      <ul className="model-bars">
        {rows.map((r, i) => (
          <li key={r.model}>
            <span className="model-name">{r.model}</span>
            <svg className="model-bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
              <rect width={max > 0 ? (values[i] / max) * 100 : 0} height="10" rx="1.5" className={`series-${i % SERIES}`} />
            </svg>
            <span className="model-value">{formatMetric(metric, values[i])}</span>
          </li>
        ))}
      </ul>
    </figure>
  )
}
