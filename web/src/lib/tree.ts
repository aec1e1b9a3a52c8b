import type { Message } from '../api/types'

/**
 * Conversations are trees: editing a message or regenerating an answer adds a sibling. The API
 * returns the messages flat (oldest first) with their parent ids, and this rebuilds the path
 * that is shown, given which child the user picked at each fork.
 */
export const ROOT = '__root__'

export interface MessageTree {
  byId: Map<string, Message>
  children: Map<string, Message[]>
}

export function buildTree(messages: Message[]): MessageTree {
  const byId = new Map<string, Message>()
  const children = new Map<string, Message[]>()
  for (const m of messages) byId.set(m.id, m)
  // Compared as instants: the JSON text drops trailing zeros of the fraction, so its string order is not time order.
  const ordered = [...messages].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt))
  for (const m of ordered) {
    // A parent that is missing (deleted or not visible) makes the message a root rather than losing it.
    const parent = m.parentMessageId && byId.has(m.parentMessageId) ? m.parentMessageId : ROOT
    const list = children.get(parent)
    if (list) list.push(m)
    else children.set(parent, [m])
  }
  return { byId, children }
}

export interface PathEntry {
  message: Message
  /** 0-based position among its siblings. */
  index: number
  siblings: Message[]
}

/** The visible path: at each fork the chosen child, otherwise the newest one. */
export function activePath(tree: MessageTree, selected: ReadonlyMap<string, string>): PathEntry[] {
  const path: PathEntry[] = []
  let key = ROOT
  for (let guard = 0; guard < 10_000; guard++) {
    const siblings = tree.children.get(key)
    if (!siblings || siblings.length === 0) break
    const chosenId = selected.get(key)
    let index = chosenId ? siblings.findIndex((m) => m.id === chosenId) : -1
    if (index < 0) index = siblings.length - 1
    const message = siblings[index]
    path.push({ message, index, siblings })
    key = message.id
  }
  return path
}

/** The selection that makes `messageId` visible (every ancestor chosen at its fork). */
export function selectPathTo(tree: MessageTree, selected: ReadonlyMap<string, string>, messageId: string): Map<string, string> {
  const next = new Map(selected)
  let current = tree.byId.get(messageId)
  for (let guard = 0; current && guard < 10_000; guard++) {
    const parent = current.parentMessageId && tree.byId.has(current.parentMessageId) ? current.parentMessageId : ROOT
    next.set(parent, current.id)
    current = parent === ROOT ? undefined : tree.byId.get(parent)
  }
  return next
}
