import { useCallback, useEffect, useState } from 'react'
import { api } from '../api/client'
import type { SavedPrompt } from '../api/types'

const CHANGED = 'jackcwf:prompts-changed'

/** Tells every open picker that the saved prompts changed (the prompts page calls it). */
export function promptsChanged() {
  window.dispatchEvent(new Event(CHANGED))
}

/** The user's saved prompts, read once and again whenever they change. */
export function useSavedPrompts(): SavedPrompt[] {
  const [prompts, setPrompts] = useState<SavedPrompt[]>([])
  const load = useCallback(async () => {
    try {
      const list = await api<{ items: SavedPrompt[] }>('GET', '/api/prompts')
      setPrompts(list.items ?? [])
    } catch {
      // Without the list, typing / simply shows no picker.
    }
  }, [])
  useEffect(() => {
    void load()
    window.addEventListener(CHANGED, load)
    return () => window.removeEventListener(CHANGED, load)
  }, [load])
  return prompts
}

/** What follows a leading `/` while it is one word (`/sum` → `sum`); null when the draft is not a command. */
export function slashQuery(draft: string): string | null {
  const m = /^\/(\S*)$/.exec(draft)
  return m ? m[1].toLowerCase() : null
}

/** Prompts whose command starts with the query first, then those whose command or title contains it. */
export function filterPrompts(prompts: readonly SavedPrompt[], query: string, max = 8): SavedPrompt[] {
  const q = query.toLowerCase()
  const starts = prompts.filter((p) => p.command?.startsWith(q))
  const contains = prompts.filter((p) => !starts.includes(p) && ((p.command ?? '').includes(q) || p.title.toLowerCase().includes(q)))
  return [...starts, ...contains].slice(0, max)
}
