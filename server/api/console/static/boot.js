// Velo console bootstrap: the only script an unauthenticated browser receives.
//
// The page says whether the server wants a bearer token (data-auth, filled in by the server).
// Without one, app.js loads at once. With one, the token is asked here once, checked by fetching
// app.js with it (the server serves the console's code to token holders only), kept in
// sessionStorage (this tab only, gone when it closes) and sent as `Authorization: Bearer` on every
// API call app.js makes. app.js runs from a blob URL because it was fetched, not linked.
(function () {
  'use strict';

  const KEY = 'velo.token';
  const needsToken = document.documentElement.dataset.auth === '1';
  const $ = (id) => document.getElementById(id);

  const session = {
    auth: needsToken,
    token: needsToken ? sessionStorage.getItem(KEY) : null,
    /** Request headers carrying the token (when there is one). */
    headers(extra) {
      const h = Object.assign({}, extra || {});
      if (this.token) h.Authorization = 'Bearer ' + this.token;
      return h;
    },
    /** The server refused the token (changed or revoked): forget it and ask again. */
    expired(message) {
      sessionStorage.removeItem(KEY);
      sessionStorage.setItem('velo.login-message', message || 'Your session has expired: sign in again.');
      location.reload();
    },
    logout() {
      sessionStorage.removeItem(KEY);
      location.reload();
    },
  };
  window.velo = { session };

  function words() {
    try {
      return JSON.parse($('velo-words').textContent);
    } catch (_) {
      return { keywords: [], types: [], units: [], functions: [] };
    }
  }
  window.velo.words = words();

  async function errorMessage(resp) {
    try {
      const body = await resp.json();
      return (body.error && body.error.message) || resp.statusText;
    } catch (_) {
      return resp.status + ' ' + resp.statusText;
    }
  }

  /** Fetch the console's code with the token; false when the server refuses the token. */
  async function loadConsole() {
    const resp = await fetch('/ui/app.js', { headers: session.headers(), cache: 'no-cache' });
    if (resp.status === 401) return { ok: false, message: await errorMessage(resp) };
    if (!resp.ok) return { ok: false, message: 'the console could not be loaded: ' + (await errorMessage(resp)) };
    const code = await resp.text();
    const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
    const script = document.createElement('script');
    script.src = url;
    script.onload = () => URL.revokeObjectURL(url);
    document.head.appendChild(script);
    return { ok: true };
  }

  function showLogin(message) {
    $('login').hidden = false;
    $('nav').hidden = true;
    const error = $('login-error');
    error.hidden = !message;
    error.textContent = message || '';
    $('token').focus();
  }

  async function start() {
    if (needsToken) $('logout').addEventListener('click', () => session.logout());
    const pending = sessionStorage.getItem('velo.login-message');
    sessionStorage.removeItem('velo.login-message');
    if (needsToken && !session.token) {
      showLogin(pending);
    } else {
      const result = await loadConsole().catch((exc) => ({ ok: false, message: 'the server cannot be reached (' + exc.message + ')' }));
      if (!result.ok && !needsToken) {
        $('app').textContent = result.message;
      } else if (!result.ok) {
        sessionStorage.removeItem(KEY);
        session.token = null;
        showLogin(result.message);
      }
    }
    $('login-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const token = $('token').value.trim();
      if (!token) return;
      session.token = token;
      const result = await loadConsole().catch((exc) => ({ ok: false, message: 'the server cannot be reached (' + exc.message + ')' }));
      if (result.ok) {
        sessionStorage.setItem(KEY, token);
        $('login').hidden = true;
        $('token').value = '';
      } else {
        session.token = null;
        showLogin(result.message);
      }
    });
  }

  start();
})();
