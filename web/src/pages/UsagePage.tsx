import { useEffect, useId, useMemo, useState } from 'react'
import { api, errorMessage, isNotFound } from '../api/client'
import type { UsageReport, UsageRow } from '../api/types'
import { formatNumber, formatUsd, isoDay } from '../lib/format'

const MAX_DAYS = 31
const SERIES = 6

interface DayUsage {
  day: string
  byModel: UsageRow[]
}

function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00`)
  d.setDate(d.getDate() + n)
  return isoDay(d)
}

function daysBetween(from: string, to: string): string[] {
  const days: string[] = []
  for (let d = from; d <= to && days.length < MAX_DAYS; d = addDays(d, 1)) days.push(d)
  return days
}

/** Runs the tasks with at most `limit` in flight, so a month of days does not flood the server. */
async function pooled<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length)
  let next = 0
  async function worker() {
    while (next < tasks.length) {
      const i = next++
      results[i] = await tasks[i]()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  return results
}

function usageUrl(from: string, to: string) {
  return `/api/usage?${new URLSearchParams({ from, to })}`
}

export function UsagePage() {
  const today = new Date()
  const [from, setFrom] = useState(isoDay(new Date(today.getFullYear(), today.getMonth(), 1)))
  const [to, setTo] = useState(isoDay(today))
  const [report, setReport] = useState<UsageReport | null>(null)
  const [days, setDays] = useState<DayUsage[]>([])
  const [metric, setMetric] = useState<'tokens' | 'cost'>('tokens')
  const [state, setState] = useState<'loading' | 'ready' | 'missing' | 'error'>('loading')
  const [error, setError] = useState<string | null>(null)
  const fromId = useId()
  const toId = useId()
  const metricId = useId()

  useEffect(() => {
    let cancelled = false
    setState('loading')
    ;(async () => {
      try {
        const total = await api<UsageReport>('GET', usageUrl(from, to))
        if (cancelled) return
        setReport(total)
        const range = daysBetween(from, to)
        const daily = await pooled(
          range.map((day) => async () => {
            const r = await api<UsageReport>('GET', usageUrl(day, day))
            return { day, byModel: r.byModel ?? [] }
          }),
          4,
        )
        if (cancelled) return
        setDays(daily)
        setState('ready')
      } catch (e) {
        if (cancelled) return
        if (isNotFound(e)) setState('missing')
        else {
          setError(errorMessage(e))
          setState('error')
        }
      }
    })()
    return () => {
      cancelled = true
    }
  }, [from, to])

  const modelNames = useMemo(() => {
    const names = new Set<string>()
    for (const r of report?.byModel ?? []) names.add(r.model)
    for (const d of days) for (const r of d.byModel) names.add(r.model)
    return [...names]
  }, [report, days])

  return (
    <section className="page" aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <div className="filters">
        <label htmlFor={fromId}>From</label>
        <input id={fromId} type="date" value={from} max={to} onChange={(e) => e.target.value && setFrom(e.target.value)} />
        <label htmlFor={toId}>To</label>
        <input id={toId} type="date" value={to} min={from} onChange={(e) => e.target.value && setTo(e.target.value)} />
        <label htmlFor={metricId}>Chart</label>
        <select id={metricId} value={metric} onChange={(e) => setMetric(e.target.value as 'tokens' | 'cost')}>
          <option value="tokens">Tokens</option>
          <option value="cost">Cost (USD)</option>
        </select>
      </div>
      {state === 'loading' && <p className="muted" role="status">Loading usage…</p>}
      {state === 'missing' && <p className="muted">Usage reporting is not available on this server yet.</p>}
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
              <span className="card-value">{formatNumber(report.totals?.requests)}</span>
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
          </div>
          <UsageChart days={days} models={modelNames} metric={metric} />
          {daysBetween(from, to).length >= MAX_DAYS && <p className="muted small">The chart shows the first {MAX_DAYS} days of the range.</p>}
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
              {(report.byModel ?? []).length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    No usage in this period.
                  </td>
                </tr>
              )}
              {(report.byModel ?? []).map((r) => (
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

/** A stacked bar per day, one colour per model; drawn as SVG to stay small and CSP-friendly. */
function UsageChart({ days, models, metric }: { days: DayUsage[]; models: string[]; metric: 'tokens' | 'cost' }) {
  const value = (r: UsageRow) => (metric === 'tokens' ? r.inputTokens + r.outputTokens : r.costUsd)
  const totals = days.map((d) => d.byModel.reduce((s, r) => s + value(r), 0))
  const max = Math.max(0, ...totals)
  const width = 640
  const height = 220
  const pad = { left: 48, right: 8, top: 12, bottom: 28 }
  const plotW = width - pad.left - pad.right
  const plotH = height - pad.top - pad.bottom
  const slot = days.length > 0 ? plotW / days.length : plotW
  const barW = Math.max(2, slot * 0.7)
  const fmt = (v: number) => (metric === 'tokens' ? formatNumber(Math.round(v)) : formatUsd(v))
  const summary = `${metric === 'tokens' ? 'Tokens' : 'Cost'} per day from ${days[0]?.day ?? ''} to ${days.at(-1)?.day ?? ''}; highest day ${fmt(max)}.`

  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={summary} preserveAspectRatio="none">
        <line x1={pad.left} x2={width - pad.right} y1={pad.top + plotH} y2={pad.top + plotH} className="axis" />
        <text x={pad.left - 6} y={pad.top + 8} className="tick" textAnchor="end">
          {fmt(max)}
        </text>
        <text x={pad.left - 6} y={pad.top + plotH} className="tick" textAnchor="end">
          0
        </text>
        {days.map((d, i) => {
          let y = pad.top + plotH
          const x = pad.left + i * slot + (slot - barW) / 2
          return (
            <g key={d.day}>
              <title>{`${d.day}: ${fmt(totals[i])}`}</title>
              {models.map((name, mi) => {
                const row = d.byModel.find((r) => r.model === name)
                if (!row || max === 0) return null
                const h = (value(row) / max) * plotH
                y -= h
                return <rect key={name} x={x} y={y} width={barW} height={Math.max(0, h)} className={`series-${mi % SERIES}`} />
              })}
              {(i === 0 || i === days.length - 1 || (days.length > 10 && i % 7 === 0)) && (
                <text x={x + barW / 2} y={height - 8} className="tick" textAnchor="middle">
                  {d.day.slice(5)}
                </text>
              )}
            </g>
          )
        })}
      </svg>
      <figcaption>
        {models.length === 0 ? (
          <span className="muted">No usage to chart yet.</span>
        ) : (
          <ul className="legend">
            {models.map((m, i) => (
              <li key={m}>
                <svg width="12" height="12" aria-hidden="true">
                  <rect width="12" height="12" rx="2" className={`series-${i % SERIES}`} />
                </svg>
                {m}
              </li>
            ))}
          </ul>
        )}
      </figcaption>
    </figure>
  )
}
