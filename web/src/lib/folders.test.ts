import { describe, expect, it } from 'vitest'
import type { ConversationSummary, Folder } from '../api/types'
import { groupByFolder, listOrder } from './folders'

const folder = (id: string, name: string): Folder => ({ id, name, conversationCount: 0, createdAt: '', updatedAt: '' })
const conv = (id: string, updatedAt: string, extra: Partial<ConversationSummary> = {}): ConversationSummary => ({
  id,
  title: id,
  createdAt: updatedAt,
  updatedAt,
  ...extra,
})

describe('groupByFolder', () => {
  it('puts each conversation in its folder and keeps the list order inside each section', () => {
    const items = [conv('p', '2026-01-01', { pinned: true, folderId: 'f1' }), conv('a', '2026-01-05', { folderId: 'f1' }), conv('b', '2026-01-04'), conv('c', '2026-01-03', { folderId: 'f2' })]
    const { folders, unfiled } = groupByFolder(items, [folder('f1', 'Work'), folder('f2', 'Home')])
    expect(folders.map((g) => [g.folder.name, g.conversations.map((c) => c.id)])).toEqual([
      ['Work', ['p', 'a']],
      ['Home', ['c']],
    ])
    expect(unfiled.map((c) => c.id)).toEqual(['b'])
  })

  it('shows a conversation of an unknown folder with the unfiled ones', () => {
    const { folders, unfiled } = groupByFolder([conv('x', '2026-01-01', { folderId: 'gone' })], [])
    expect(folders).toEqual([])
    expect(unfiled.map((c) => c.id)).toEqual(['x'])
  })
})

describe('listOrder', () => {
  it('sorts pinned first, then newest first', () => {
    const sorted = [conv('old', '2026-01-01'), conv('pinned-old', '2025-01-01', { pinned: true }), conv('new', '2026-02-01')].sort(listOrder)
    expect(sorted.map((c) => c.id)).toEqual(['pinned-old', 'new', 'old'])
  })
})
