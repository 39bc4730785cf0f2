//! Lets a browser test see a page's RTCPeerConnections without help from the
//! page: an init script, run before any of the page's own scripts, wraps the
//! RTCPeerConnection constructor and keeps every instance it makes.

/**
 * Tracks the RTCPeerConnections of `page` from its next navigation on (and
 * after reloads). In the page, `window.openPeerConnections()` then returns
 * those not closed yet, oldest first: what the page holds open.
 * @param {import('playwright-core').Page} page
 */
export async function trackPeerConnections(page) {
  await page.addInitScript(() => {
    const made = [];
    window.RTCPeerConnection = new Proxy(window.RTCPeerConnection, {
      construct(target, args, newTarget) {
        const pc = Reflect.construct(target, args, newTarget);
        made.push(pc);
        return pc;
      },
    });
    // close() sets signalingState to 'closed' at once, and nothing else does.
    window.openPeerConnections = () => made.filter((pc) => pc.signalingState !== 'closed');
  });
}
