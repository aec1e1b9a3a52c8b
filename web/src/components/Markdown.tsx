import { memo, useEffect, useMemo, useRef, type MouseEvent } from 'react'
import { renderMarkdown } from '../lib/markdown'

export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    // The Clipboard API needs a secure context; fall back to a selection copy.
    const area = document.createElement('textarea')
    area.value = text
    area.setAttribute('readonly', '')
    area.className = 'offscreen'
    document.body.appendChild(area)
    area.select()
    let ok = false
    try {
      ok = document.execCommand('copy')
    } catch {
      ok = false
    }
    area.remove()
    return ok
  }
}

/**
 * Model output rendered as sanitised Markdown. The copy buttons on code blocks are added by the
 * app after sanitising, so the model's own output can never contain a button.
 */
export const Markdown = memo(function Markdown({ text, testId }: { text: string; testId?: string }) {
  const html = useMemo(() => renderMarkdown(text), [text])
  const ref = useRef<HTMLDivElement>(null)

  useEffect(() => {
    const root = ref.current
    if (!root) return
    for (const pre of Array.from(root.querySelectorAll('pre'))) {
      if (pre.parentElement?.classList.contains('code-block')) continue
      const wrapper = document.createElement('div')
      wrapper.className = 'code-block'
      const bar = document.createElement('div')
      bar.className = 'code-bar'
      const lang = document.createElement('span')
      lang.textContent = pre.dataset.lang || 'text'
      const button = document.createElement('button')
      button.type = 'button'
      button.className = 'copy-code'
      button.textContent = 'Copy'
      button.setAttribute('aria-label', `Copy ${lang.textContent} code`)
      bar.append(lang, button)
      pre.replaceWith(wrapper)
      wrapper.append(bar, pre)
      // Long lines scroll sideways: the block must be reachable from the keyboard to scroll it.
      pre.tabIndex = 0
    }
  }, [html])

  async function onClick(e: MouseEvent<HTMLDivElement>) {
    const button = (e.target as HTMLElement).closest('button.copy-code')
    if (!button) return
    const code = button.closest('.code-block')?.querySelector('pre code')
    const ok = await copyText(code?.textContent ?? '')
    button.textContent = ok ? 'Copied' : 'Copy failed'
    window.setTimeout(() => (button.textContent = 'Copy'), 1500)
  }

  return <div className="markdown" data-testid={testId} ref={ref} onClick={onClick} dangerouslySetInnerHTML={{ __html: html }} />
})
