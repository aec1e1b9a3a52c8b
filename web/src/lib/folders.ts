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

/** Pinned first, then newest first: the order the server lists conversations in. */
export function listOrder(a: ConversationSummary, b: ConversationSummary): number {
  if (!!a.pinned !== !!b.pinned) return a.pinned ? -1 : 1
  return a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0
}
