import DOMPurify from 'dompurify'
import { Marked, type Tokens } from 'marked'
import hljs from 'highlight.js/lib/core'
import bash from 'highlight.js/lib/languages/bash'
import csharp from 'highlight.js/lib/languages/csharp'
import css from 'highlight.js/lib/languages/css'
import go from 'highlight.js/lib/languages/go'
import java from 'highlight.js/lib/languages/java'
import javascript from 'highlight.js/lib/languages/javascript'
import json from 'highlight.js/lib/languages/json'
import markdownLang from 'highlight.js/lib/languages/markdown'
import python from 'highlight.js/lib/languages/python'
import rust from 'highlight.js/lib/languages/rust'
import sql from 'highlight.js/lib/languages/sql'
import typescript from 'highlight.js/lib/languages/typescript'
import xml from 'highlight.js/lib/languages/xml'
import yaml from 'highlight.js/lib/languages/yaml'

// Only a handful of common languages: the full highlight.js bundle would triple the app's size.
const languages = { bash, csharp, css, go, java, javascript, json, markdown: markdownLang, python, rust, sql, typescript, xml, yaml }
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang)
hljs.registerAliases(['sh', 'shell', 'zsh'], { languageName: 'bash' })
hljs.registerAliases(['cs', 'c#', 'dotnet'], { languageName: 'csharp' })
hljs.registerAliases(['js', 'jsx', 'mjs'], { languageName: 'javascript' })
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' })
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' })
hljs.registerAliases(['py'], { languageName: 'python' })
hljs.registerAliases(['yml'], { languageName: 'yaml' })
hljs.registerAliases(['md'], { languageName: 'markdown' })
hljs.registerAliases(['rs'], { languageName: 'rust' })

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}

const SAFE_LINK = /^(?:https?:|mailto:)/i
const DATA_IMAGE = /^data:image\/(?:png|gif|jpe?g|webp);base64,/i

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    // Raw HTML in model output is shown as text, never interpreted: a model that echoes a
    // payload shows the payload. DOMPurify below is the second line of defence.
    html({ text }: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(text)
    },
    // Remote images in model output could leak the conversation through their URL (and the CSP
    // would block them anyway), so only inline raster images are shown; others become their alt text.
    image({ href, text }: Tokens.Image) {
      if (DATA_IMAGE.test(href)) return `<img src="${escapeHtml(href)}" alt="${escapeHtml(text)}">`
      return escapeHtml(text ? `[image: ${text}]` : '[image]')
    },
    code({ text, lang }: Tokens.Code) {
      const language = (lang ?? '').trim().split(/\s+/)[0]?.toLowerCase() ?? ''
      const known = language !== '' && hljs.getLanguage(language) !== undefined
      const highlighted = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text)
      const label = known ? escapeHtml(language) : language ? escapeHtml(language) : 'text'
      return `<pre tabindex="0" data-lang="${label}"><code class="hljs${known ? ` language-${escapeHtml(language)}` : ''}">${highlighted}</code></pre>\n`
    },
  },
})

let hooksInstalled = false

function installHooks() {
  if (hooksInstalled) return
  hooksInstalled = true
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A') {
      const href = node.getAttribute('href') ?? ''
      // DOMPurify already drops javascript: and friends; links are further limited to the web and mail
      // so that data:, blob:, file: or protocol handlers cannot be reached from model output.
      if (!SAFE_LINK.test(href.trim())) {
        node.removeAttribute('href')
      } else {
        node.setAttribute('target', '_blank')
        node.setAttribute('rel', 'noopener noreferrer nofollow')
      }
    }
    if (node.nodeName === 'IMG' && !DATA_IMAGE.test(node.getAttribute('src') ?? '')) {
      // Remote images in model output could leak the conversation through their URL.
      node.removeAttribute('src')
    }
  })
}

/** Sanitises HTML to the inert subset a chat answer may use. */
export function sanitizeHtml(html: string): string {
  installHooks()
  return DOMPurify.sanitize(html, {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'iframe', 'object', 'embed', 'link', 'meta', 'base', 'svg', 'math', 'template'],
    FORBID_ATTR: ['style', 'srcset', 'action', 'formaction', 'xlink:href', 'ping'],
    ALLOW_DATA_ATTR: false,
    ADD_ATTR: ['target', 'data-lang'],
  })
}

/** Renders untrusted Markdown (model output) to sanitised HTML. */
export function renderMarkdown(markdown: string): string {
  const html = marked.parse(markdown, { async: false })
  return sanitizeHtml(html)
}
