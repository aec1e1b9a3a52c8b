import { describe, expect, it } from 'vitest'
import type { SavedPrompt } from '../api/types'
import { filterPrompts, slashQuery } from './prompts'

const prompt = (title: string, command: string | null): SavedPrompt => ({ id: title, title, command, text: `${title} text`, createdAt: '', updatedAt: '' })

describe('slashQuery', () => {
  it('reads the word after a leading slash', () => {
    expect(slashQuery('/')).toBe('')
    expect(slashQuery('/Sum')).toBe('sum')
    expect(slashQuery('/sum more words')).toBeNull()
    expect(slashQuery('a /sum')).toBeNull()
    expect(slashQuery('')).toBeNull()
  })
})

describe('filterPrompts', () => {
  const prompts = [prompt('Translate to French', 'fr'), prompt('Summarise', 'sum'), prompt('Summary of a meeting', 'meeting'), prompt('No command', null)]

  it('lists every prompt for an empty query', () => {
    expect(filterPrompts(prompts, '').map((p) => p.title)).toEqual(prompts.map((p) => p.title))
  })

  it('puts commands starting with the query first, then commands or titles containing it', () => {
    expect(filterPrompts(prompts, 'sum').map((p) => p.title)).toEqual(['Summarise', 'Summary of a meeting'])
    expect(filterPrompts(prompts, 'COMMAND').map((p) => p.title)).toEqual(['No command'])
    expect(filterPrompts(prompts, 'zzz')).toEqual([])
  })
})
