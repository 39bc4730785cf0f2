// Test client for the `offers` dialect, written from the protocol notes
// (protocols.md 2.4-2.5): auth in the socket.io handshake, an "Answer <name>"
// button per listed offer, the offerer trickling candidates before any answer
// exists, the answerer awaiting the stored candidates through emitWithAck.
// Exposes window.offers for the browser test to drive and inspect.
(() => {
  const params = new URLSearchParams(location.search);
  const userName = params.get('user') || `Rob-${Math.floor(Math.random() * 100000)}`;
  const localVideo = document.querySelector('#local-video');
  const remoteVideo = document.querySelector('#remote-video');
  const answers = document.querySelector('#answers');
  document.querySelector('#user').textContent = userName;

  const state = { userName, offersSeen: [], acked: null, answered: null, candidatesIn: 0, errors: [] };
  let pc = null;
  let didIOffer = false;

  const socket = io.connect(`${location.origin}/`, { auth: { userName, password: 'x' } });
  socket.on('connect', () => { state.connected = true; });
  socket.on('disconnect', (reason) => { state.disconnected = reason; });

  function listOffer(offerObj) {
    state.offersSeen.push(offerObj);
    const button = document.createElement('button');
    button.textContent = `Answer ${offerObj.offererUserName}`;
    button.addEventListener('click', () => answer(offerObj).catch(fail));
    answers.append(button);
  }

  function fail(e) {
    state.errors.push(String(e && e.message || e));
  }

  socket.on('availableOffers', (list) => list.forEach(listOffer));
  socket.on('newOfferAwaiting', (list) => list.forEach(listOffer));
  socket.on('answerResponse', (offerObj) => {
    state.answered = offerObj;
    pc.setRemoteDescription(offerObj.answer).catch(fail);
  });
  socket.on('receivedIceCandidateFromServer', (candidate) => {
    state.candidatesIn += 1;
    pc.addIceCandidate(candidate).catch(fail);
  });

  async function setUp(offerObj) {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    localVideo.srcObject = stream;
    // No STUN: tests have no internet; host candidates are enough on loopback.
    pc = new RTCPeerConnection({ iceServers: [] });
    const remote = new MediaStream();
    remoteVideo.srcObject = remote;
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate) {
        socket.emit('sendIceCandidateToSignalingServer', { iceCandidate: e.candidate, iceUserName: userName, didIOffer });
      }
    });
    pc.addEventListener('track', (e) => e.streams[0].getTracks().forEach((t) => remote.addTrack(t)));
    if (offerObj) await pc.setRemoteDescription(offerObj.offer);
  }

  async function call() {
    await setUp();
    const offer = await pc.createOffer();
    pc.setLocalDescription(offer).catch(fail); // not awaited, as in the demo
    didIOffer = true;
    socket.emit('newOffer', offer);
  }

  async function answer(offerObj) {
    await setUp(offerObj);
    const description = await pc.createAnswer({});
    await pc.setLocalDescription(description);
    offerObj.answer = description;
    const stored = await socket.emitWithAck('newAnswer', offerObj);
    state.acked = stored;
    for (const c of stored) await pc.addIceCandidate(c);
  }

  document.querySelector('#call').addEventListener('click', () => call().catch(fail));

  window.offers = {
    state,
    connectionState: () => (pc ? pc.connectionState : 'none'),
    remoteVideoWidth: () => remoteVideo.videoWidth,
    transport: () => socket.io.engine && socket.io.engine.transport.name,
  };
})();
