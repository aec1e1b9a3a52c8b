import { describe, expect, it } from 'vitest'
import type { ConversationSummary, Folder } from '../api/types'
import { groupByFolder, listOrder, timeKey } from './folders'

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

  it('compares times, not strings, when the server trims trailing zeros of the fraction', () => {
    // 05.9 (…:05.900000) is older than 05.95; 06 (a whole second) is newer than 05.99; the strings say otherwise.
    const items = [
      conv('t1', '2026-12-05T23:21:05.9Z'),
      conv('t2', '2026-12-05T23:21:05.900001Z'),
      conv('t3', '2026-12-05T23:21:05.95Z'),
      conv('t4', '2026-12-05T23:21:05.99Z'),
      conv('t5', '2026-12-05T23:21:06Z'),
      conv('t6', '2026-12-05T23:21:06.000001Z'),
    ]
    const undone = items[0]
    const sorted = [undone, ...[...items].reverse().filter((c) => c !== undone)].sort(listOrder)
    expect(sorted.map((c) => c.id)).toEqual(['t6', 't5', 't4', 't3', 't2', 't1'])
  })

  it('puts a conversation back in its place after an undo among conversations made microseconds apart', () => {
    // Made in a burst: …40.1234Z is …40.123400, older than …40.123401 to …40.123424.
    const made = Array.from({ length: 25 }, (_, i) => conv(`c${i}`, `2026-12-05T23:21:40.1234${String(i).padStart(2, '0')}Z`.replace(/0+Z$/, 'Z').replace(/\.Z$/, 'Z')))
    const newestFirst = [...made].reverse()
    const [undone, ...rest] = newestFirst
    expect([undone, ...rest].sort(listOrder)).toEqual(newestFirst)
    expect([...rest, undone].sort(listOrder)).toEqual(newestFirst)
  })
  it('keeps the newest first when an older conversation was made on a round tenth of a second', () => {
    // Topic 11 made at …:01.500000 is written "…:01.5Z"; Topics 12 to 35 followed within 100 ms.
    const made = [conv('Topic 11', '2026-12-05T23:21:01.5Z')]
    for (let i = 12; i <= 35; i++) made.push(conv(`Topic ${i}`, `2026-12-05T23:21:01.5${String((i - 11) * 3917).padStart(5, '0')}Z`))
    const newestFirst = [...made].reverse()
    const [undone, ...rest] = newestFirst
    expect([undone, ...rest].sort(listOrder).map((c) => c.id)).toEqual(newestFirst.map((c) => c.id))
  })
})

describe('timeKey', () => {
  it('pads the fraction so that keys compare in time order', () => {
    expect(timeKey('2026-12-05T23:21:05Z')).toBe('2026-12-05T23:21:05.000000000')
    expect(timeKey('2026-12-05T23:21:05.5Z')).toBe('2026-12-05T23:21:05.500000000')
    expect(timeKey('2026-12-05T23:21:05.123456Z') > timeKey('2026-12-05T23:21:05.12345Z')).toBe(true)
    expect(timeKey('2026-12-05T23:21:05.000001Z') > timeKey('2026-12-05T23:21:05Z')).toBe(true)
  })
})
