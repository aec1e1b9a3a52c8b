import { useEffect, useState } from 'react'

/**
 * Hash routes (`#/c/<id>`, `#/usage`, `#/keys`, `#/files`, `#/prompts`, `#/admin`, `#/audit`): deep links work without the server
 * knowing the client's routes.
 */
export type Route =
  | { page: 'chat'; conversationId?: string }
  | { page: 'usage' }
  | { page: 'keys' }
  | { page: 'files' }
  | { page: 'prompts' }
  | { page: 'admin' }
  | { page: 'audit' }
  | { page: 'account' }

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, '')
  const [head, arg] = path.split('/')
  switch (head) {
    case 'c':
      return arg ? { page: 'chat', conversationId: decodeURIComponent(arg) } : { page: 'chat' }
    case 'usage':
      return { page: 'usage' }
    case 'keys':
      return { page: 'keys' }
    case 'files':
      return { page: 'files' }
    case 'prompts':
      return { page: 'prompts' }
    case 'admin':
      return { page: 'admin' }
    case 'audit':
      return { page: 'audit' }
    case 'account':
      return { page: 'account' }
    default:
      return { page: 'chat' }
  }
}

export function routeHref(route: Route): string {
  switch (route.page) {
    case 'chat':
      return route.conversationId ? `#/c/${encodeURIComponent(route.conversationId)}` : '#/'
    default:
      return `#/${route.page}`
  }
}

export function navigate(route: Route, replace = false) {
  const href = routeHref(route)
  if (replace) {
    history.replaceState(null, '', href)
    window.dispatchEvent(new HashChangeEvent('hashchange'))
  } else {
    window.location.hash = href
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash))
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.hash))
    window.addEventListener('hashchange', update)
    return () => window.removeEventListener('hashchange', update)
  }, [])
  return route
}
