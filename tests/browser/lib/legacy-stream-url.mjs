//! Gives a test page the old browser API for showing a MediaStream through a
//! URL: `URL.createObjectURL(mediaStream)`, with the URL then assigned to a
//! <video>/<audio> element's `src`. Browsers removed this in 2018 (Chrome 71,
//! Firefox 62) in favour of `element.srcObject = stream`; pages
//! written before that (EasyRTC 1.1.0's client, in `setVideoObjectSrc`)
//! throw a TypeError at `createObjectURL` in a current browser.
//!
//! `legacyStreamUrl` is meant for Playwright's `page.addInitScript`, so it
//! runs in every frame before the page's own scripts. It is self-contained
//! (Playwright serialises it). What it emulates, and nothing more:
//!
//! - `URL.createObjectURL(stream)` for a MediaStream returns a fresh
//!   `blob:<origin>/<uuid>`-shaped token URL and remembers the stream under
//!   it. Any other argument (Blob, File, MediaSource) goes to the browser's
//!   own `createObjectURL`, so normal blob URLs keep working.
//! - Assigning such a token to a media element's `src`, by the property or by
//!   `setAttribute('src', ...)`, sets `srcObject` to the stream instead (and
//!   removes any `src` attribute, which `srcObject` would override anyway).
//!   Reading the `src` property back gives the token while that stream is
//!   still the element's `srcObject`.
//! - Assigning anything else to `src` first clears `srcObject` (with the old
//!   API `src` was the element's only source, so e.g. EasyRTC's
//!   `clearMediaStream`, `element.src = ""`, detaches the stream), then
//!   behaves natively.
//! - `URL.revokeObjectURL(token)` forgets the token (an element already
//!   showing the stream keeps it, as with the old API); any other URL goes to
//!   the browser's own `revokeObjectURL`.

/** The init script (runs in the page; must not use anything from this module). */
export function legacyStreamUrl() {
  if (window.__legacyStreamUrl) return;
  const streams = new Map(); // token URL -> MediaStream
  const tokenOf = new WeakMap(); // media element -> token URL it was given
  window.__legacyStreamUrl = { created: 0, attached: 0, isToken: (url) => streams.has(String(url)) };

  const nativeCreate = URL.createObjectURL;
  const nativeRevoke = URL.revokeObjectURL;
  const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');

  URL.createObjectURL = function createObjectURL(object) {
    if (typeof MediaStream !== 'undefined' && object instanceof MediaStream) {
      const token = `blob:${location.origin}/${hex(4)}-${hex(2)}-${hex(2)}-${hex(2)}-${hex(6)}`;
      streams.set(token, object);
      window.__legacyStreamUrl.created++;
      return token;
    }
    return nativeCreate.call(URL, object);
  };
  URL.revokeObjectURL = function revokeObjectURL(url) {
    if (streams.delete(String(url))) return;
    return nativeRevoke.call(URL, url);
  };

  const proto = HTMLMediaElement.prototype;
  const srcProp = Object.getOwnPropertyDescriptor(proto, 'src');
  const srcObjectProp = Object.getOwnPropertyDescriptor(proto, 'srcObject');
  const nativeSetAttribute = Element.prototype.setAttribute;
  const nativeRemoveAttribute = Element.prototype.removeAttribute;

  // Attaches the stream behind a token and returns true, or, for any other
  // value, detaches a stream shown so and returns false (the caller then sets
  // `src` natively).
  function assignSrc(element, value) {
    const token = String(value);
    const stream = streams.get(token);
    if (stream) {
      nativeRemoveAttribute.call(element, 'src');
      srcObjectProp.set.call(element, stream);
      tokenOf.set(element, token);
      window.__legacyStreamUrl.attached++;
      return true;
    }
    tokenOf.delete(element);
    if (srcObjectProp.get.call(element) !== null) srcObjectProp.set.call(element, null);
    return false;
  }

  Object.defineProperty(proto, 'src', {
    configurable: true,
    enumerable: srcProp.enumerable,
    get() {
      const token = tokenOf.get(this);
      if (token !== undefined && srcObjectProp.get.call(this) === streams.get(token)) return token;
      return srcProp.get.call(this);
    },
    set(value) {
      if (!assignSrc(this, value)) srcProp.set.call(this, value);
    },
  });

  // On media elements only: other elements' setAttribute is untouched.
  Object.defineProperty(proto, 'setAttribute', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function setAttribute(name, value) {
      if (String(name).toLowerCase() === 'src' && assignSrc(this, value)) return;
      return nativeSetAttribute.call(this, name, value);
    },
  });
}
