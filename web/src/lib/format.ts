import type { ModelInfo } from '../api/types'

export function formatUsd(value: number | null | undefined): string {
  const v = value ?? 0
  if (v === 0) return '$0'
  if (v < 0.01) return `$${v.toFixed(4)}`
  return `$${v.toFixed(2)}`
}

export function formatPricePerMillion(value: number): string {
  if (value === 0) return '$0'
  return value < 1 ? `$${value.toFixed(3).replace(/0+$/, '').replace(/\.$/, '')}` : `$${value.toFixed(2).replace(/\.00$/, '')}`
}

export function modelPriceLabel(m: ModelInfo): string {
  if (m.inputPricePerMillionTokens === 0 && m.outputPricePerMillionTokens === 0) return 'free'
  return `${formatPricePerMillion(m.inputPricePerMillionTokens)} in / ${formatPricePerMillion(m.outputPricePerMillionTokens)} out per 1M tokens`
}

export function formatNumber(value: number | null | undefined): string {
  return new Intl.NumberFormat().format(value ?? 0)
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString()
}

export function formatDay(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleDateString()
}

/** yyyy-mm-dd of a local date, as a date input expects. */
export function isoDay(d: Date): string {
  const y = d.getFullYear()
  const m = String(d.getMonth() + 1).padStart(2, '0')
  const day = String(d.getDate()).padStart(2, '0')
  return `${y}-${m}-${day}`
}
