// The test page's app: log in with media, list the room's occupants as
// call buttons, take calls, show the remote video, and keep what happened
// in `window.app.state` for the test to read.
(function () {
  'use strict';
  const APP = 'switchboard.test';
  const localVideo = document.getElementById('local-video');
  const remoteVideo = document.getElementById('remote-video');
  const state = { id: null, occupants: [], messages: [], acks: [], errors: [], calls: [] };

  function showOccupants(room, occupants) {
    state.occupants = Object.keys(occupants);
    const list = document.getElementById('occupants');
    list.textContent = '';
    for (const id of state.occupants) {
      const b = document.createElement('button');
      b.textContent = `Call ${id}`;
      b.onclick = () => app.call(id);
      list.appendChild(b);
    }
  }

  easyrtc.setVideoDims(320, 240);
  easyrtc.setRoomOccupantListener(showOccupants);
  easyrtc.setPeerListener((from, msgType, content) => {
    state.messages.push({ from, msgType, content });
    const li = document.createElement('li');
    li.textContent = `${from}: ${content}`;
    document.getElementById('messages').appendChild(li);
  });
  easyrtc.setAcceptChecker((caller, accept) => { state.calls.push({ from: caller }); accept(true); });
  // EasyRTC 1.1.0 shows streams with URL.createObjectURL(stream), which
  // browsers stopped taking in 2018 (even initMediaSource uses it): the
  // page gives it a setVideoObjectSrc that uses srcObject.
  easyrtc.setVideoObjectSrc = (element, stream) => {
    element.srcObject = stream || null;
    if (stream) element.play().catch(() => {});
  };
  easyrtc.setStreamAcceptor((caller, stream) => { remoteVideo.srcObject = stream; });

  const fail = (where) => (code, text) => { state.errors.push(`${where}: ${code} ${text}`); };
  easyrtc.initMediaSource(() => {
    localVideo.srcObject = easyrtc.getLocalStream();
    easyrtc.connect(APP, (id) => {
      state.id = id;
      document.getElementById('me').textContent = id;
    }, fail('connect'));
  }, fail('media'));

  const app = {
    state,
    call(id) {
      easyrtc.call(id, () => {}, fail('call'), (accepted) => { state.calls.push({ to: id, accepted }); });
    },
    send(id, text) {
      easyrtc.sendDataWS(id, 'chat', text, (ack) => { state.acks.push(ack.msgType); });
    },
    connectStatus: (id) => easyrtc.getConnectStatus(id),
    remoteVideoWidth: () => remoteVideo.videoWidth,
    remoteVideoTime: () => remoteVideo.currentTime,
    transport: () => easyrtc.webSocket && easyrtc.webSocket.io.engine.transport.name,
  };
  window.app = app;
})();
