export type MessageStatus = 'streaming' | 'complete' | 'stopped' | 'interrupted' | 'failed'

export interface Message {
  id: string
  role: 'user' | 'assistant' | 'system'
  content: string
  status: MessageStatus
  parentMessageId: string | null
  createdAt: string
  model?: string | null
  usage?: { inputTokens: number; outputTokens: number } | null
  costUsd?: number | null
  /** The owner's thumbs up or down on an answer. */
  feedback?: Feedback | null
  /** The excerpts of attached files the answer was given, best first. */
  sources?: Source[] | null
}

export type Rating = 'up' | 'down'

export interface Feedback {
  rating: Rating
  comment?: string | null
  updatedAt?: string
}

export interface Source {
  fileId: string
  fileName: string
  chunkIndex: number
  score: number
  snippet: string
}

export type FileStatus = 'processing' | 'ready' | 'failed'

export interface StoredFile {
  id: string
  name: string
  size: number
  contentType: string
  status: FileStatus
  error?: string | null
  createdAt: string
  chunkCount: number
}

export interface ConversationSummary {
  id: string
  title: string | null
  model?: string | null
  createdAt: string
  updatedAt: string
  pinned?: boolean
  archived?: boolean
  folderId?: string | null
}

export interface Folder {
  id: string
  name: string
  conversationCount: number
  createdAt: string
  updatedAt: string
}

export interface SavedPrompt {
  id: string
  title: string
  command: string | null
  text: string
  createdAt: string
  updatedAt: string
}

export interface AdminModelUsage {
  model: string
  inputTokens: number
  outputTokens: number
  costUsd: number
  requests: number
  thumbsUp: number
  thumbsDown: number
}

export interface AdminUsageReport {
  from: string
  to: string
  byModel: AdminModelUsage[]
}

export interface Conversation extends ConversationSummary {
  systemPrompt: string | null
  /** Files attached to the conversation: each turn is grounded in their most relevant passages. */
  fileIds?: string[]
  messages: Message[]
  /** Set when only the newest messages were read: the cursor of the page before them. */
  nextCursor?: string | null
}

export interface Page<T> {
  items: T[]
  nextCursor?: string | null
}

export interface Me {
  id: string
  email: string
  roles: string[]
  isAdmin: boolean
}

export interface AuthProvider {
  name: string
  displayName: string
  loginUrl: string
}

export interface ModelInfo {
  id: string
  provider: string
  displayName: string
  inputPricePerMillionTokens: number
  outputPricePerMillionTokens: number
  isDefault?: boolean
}

export interface UsageRow {
  model: string
  inputTokens: number
  outputTokens: number
  costUsd: number
  requests: number
}

export interface DayUsageRow {
  date: string
  inputTokens: number
  outputTokens: number
  costUsd: number
  requests: number
}

export interface UsageReport {
  from?: string
  to?: string
  /** cachedRequests: answers from the response cache (cost 0); tokensSaved: the tokens they would have used. */
  totals: Omit<UsageRow, 'model'> & { cachedRequests?: number; tokensSaved?: number }
  byModel: UsageRow[]
  byDay?: DayUsageRow[]
}

export interface ApiKey {
  id: string
  name: string
  prefix: string
  createdAt: string
  lastUsedAt?: string | null
}

export interface NewApiKey extends ApiKey {
  key: string
}

export interface AdminUser {
  id: string
  email: string
  isAdmin: boolean
  disabled: boolean
  createdAt: string
  monthlyBudgetUsd?: number | null
  usage?: { costUsd: number; requests: number; inputTokens?: number; outputTokens?: number } | null
}

export interface Problem {
  type?: string
  title?: string
  status?: number
  detail?: string
  code?: string
  errors?: Record<string, string[]>
  /** On a stream's final `error` event: the assistant message, its stored status and the text kept. */
  messageId?: string
  messageStatus?: MessageStatus
  content?: string
}

export interface ShareLink {
  url: string
  token: string
  createdAt: string
}

export interface SharedMessage {
  role: 'user' | 'assistant'
  content: string
  model?: string | null
  createdAt: string
}

export interface SharedConversation {
  title: string
  sharedAt: string
  messages: SharedMessage[]
}

export interface AuditEntry {
  id: string
  createdAt: string
  action: string
  outcome: 'success' | 'failure'
  actorId: string | null
  actorEmail: string | null
  target: string | null
  ip: string | null
  userAgent: string | null
  detail: string | null
}
