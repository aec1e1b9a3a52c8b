import { describe, expect, it } from 'vitest'
import type { Message } from '../api/types'
import { activePath, buildTree, selectPathTo } from './tree'

let clock = 0
function msg(id: string, role: 'user' | 'assistant', parent: string | null): Message {
  clock++
  return { id, role, content: id, status: 'complete', parentMessageId: parent, createdAt: `2026-01-01T00:00:${String(clock).padStart(2, '0')}Z` }
}

describe('message tree', () => {
  const messages = [
    msg('u1', 'user', null),
    msg('a1', 'assistant', 'u1'),
    msg('u2', 'user', 'a1'),
    msg('a2', 'assistant', 'u2'),
    msg('u2b', 'user', 'a1'), // an edit of u2
    msg('a2b', 'assistant', 'u2b'),
  ]
  const tree = buildTree(messages)

  it('shows the newest branch by default', () => {
    const path = activePath(tree, new Map())
    expect(path.map((p) => p.message.id)).toEqual(['u1', 'a1', 'u2b', 'a2b'])
    expect(path[2].index).toBe(1)
    expect(path[2].siblings.map((m) => m.id)).toEqual(['u2', 'u2b'])
  })

  it('follows the branch the user picked at a fork', () => {
    const path = activePath(tree, new Map([['a1', 'u2']]))
    expect(path.map((p) => p.message.id)).toEqual(['u1', 'a1', 'u2', 'a2'])
  })

  it('selects every ancestor of a message so that it becomes visible', () => {
    const selection = selectPathTo(tree, new Map([['a1', 'u2b']]), 'a2')
    expect(activePath(tree, selection).map((p) => p.message.id)).toEqual(['u1', 'a1', 'u2', 'a2'])
  })

  it('treats messages whose parent is unknown as roots, oldest first', () => {
    const t = buildTree([msg('x', 'user', 'missing'), msg('y', 'user', null)])
    const path = activePath(t, new Map())
    expect(path[0].siblings.map((m) => m.id)).toEqual(['x', 'y'])
  })
})
