import type { ConversationSummary, Folder } from '../api/types'

export interface FolderGroup {
  folder: Folder
  conversations: ConversationSummary[]
}

/**
 * The sidebar's sections: each folder with its conversations, then the conversations in no folder.
 * The server's order (pinned first, then newest first) is kept inside every section. A conversation
 * whose folder is not (or no longer) known shows with the unfiled ones rather than disappearing.
 */
export function groupByFolder(items: readonly ConversationSummary[], folders: readonly Folder[]): { folders: FolderGroup[]; unfiled: ConversationSummary[] } {
  const groups = new Map(folders.map((f) => [f.id, { folder: f, conversations: [] as ConversationSummary[] }]))
  const unfiled: ConversationSummary[] = []
  for (const c of items) {
    const group = c.folderId ? groups.get(c.folderId) : undefined
    if (group) group.conversations.push(c)
    else unfiled.push(c)
  }
  return { folders: [...groups.values()], unfiled }
}

/**
 * A UTC timestamp from the server as a string that sorts in time order. The server writes the
 * fraction of a second without its trailing zeros ("…:05.5Z" for …:05.500000), so comparing the
 * strings themselves puts "…:05.5Z" after "…:05.52Z" and "…:05Z" after "…:05.1Z": the fraction is
 * padded to a fixed width and the zone letter dropped here. Microseconds count, so two conversations
 * made in the same millisecond still sort apart (Date would lose that).
 */
export function timeKey(iso: string | null | undefined): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(iso ?? '')
  if (m) return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}`
  const t = Date.parse(iso ?? '')
  return Number.isNaN(t) ? '' : timeKey(new Date(t).toISOString())
}

/** Pinned first, then newest first: the order the server lists conversations in. */
export function listOrder(a: ConversationSummary, b: ConversationSummary): number {
  if (!!a.pinned !== !!b.pinned) return a.pinned ? -1 : 1
  const ta = timeKey(a.updatedAt)
  const tb = timeKey(b.updatedAt)
  return ta < tb ? 1 : ta > tb ? -1 : 0
}
