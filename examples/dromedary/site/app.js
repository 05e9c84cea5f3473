// dromedary's page: a pie chart of votes drawn as inline SVG, no library.
//
// Start-up reads config.json (apiBaseurl, version); every API call is apiBaseurl + path, so an
// empty apiBaseurl means "the API answers beside this page". The counts are polled every 5 s,
// config.json every 1 s; a new version reloads the page.
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var COUNTS_EVERY_MS = 5000;
  var CONFIG_EVERY_MS = 1000;
  var TIMEOUT_MS = 750;
  var LOG_LIMIT = 50;

  var state = { apiBaseurl: '', version: null, items: [] };

  function el(id) { return document.getElementById(id); }

  function log(message, isError) {
    var item = document.createElement('li');
    var stamp = document.createElement('time');
    stamp.textContent = new Date().toLocaleTimeString();
    item.appendChild(stamp);
    var text = document.createElement('span');
    text.textContent = message;
    if (isError) { text.className = 'error'; }
    item.appendChild(text);
    var list = el('log');
    list.insertBefore(item, list.firstChild);
    while (list.children.length > LOG_LIMIT) { list.removeChild(list.lastChild); }
  }

  // GET a JSON document; rejects on timeout, network error or a non-2xx status (with the
  // API's {"error": ...} message when it sends one).
  function getJson(url) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, TIMEOUT_MS);
    return fetch(url, { cache: 'no-store', signal: controller.signal })
      .then(function (response) {
        return response.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
          if (!response.ok) {
            var reason = body && body.error ? body.error : 'HTTP ' + response.status;
            throw new Error(reason);
          }
          return body;
        });
      })
      .catch(function (error) {
        if (error.name === 'AbortError') { throw new Error('timed out'); }
        throw error;
      })
      .finally(function () { clearTimeout(timer); });
  }

  function api(path) { return state.apiBaseurl + path; }

  function configUrl() { return 'config.json?t=' + Date.now(); }

  // Chart --------------------------------------------------------------------------------------

  function point(fraction, radius) {
    var angle = 2 * Math.PI * fraction - Math.PI / 2;
    return (radius * Math.cos(angle)).toFixed(3) + ' ' + (radius * Math.sin(angle)).toFixed(3);
  }

  function slice(item, start, end) {
    var shape;
    if (end - start >= 0.9999) {
      shape = document.createElementNS(SVG_NS, 'circle');
      shape.setAttribute('r', '100');
    } else {
      shape = document.createElementNS(SVG_NS, 'path');
      var large = end - start > 0.5 ? 1 : 0;
      shape.setAttribute('d', 'M 0 0 L ' + point(start, 100) +
        ' A 100 100 0 ' + large + ' 1 ' + point(end, 100) + ' Z');
    }
    shape.setAttribute('fill', item.color);
    shape.setAttribute('data-label', item.label);
    shape.addEventListener('mouseenter', function () {
      shape.setAttribute('fill', item.highlight);
    });
    shape.addEventListener('mouseleave', function () {
      shape.setAttribute('fill', item.color);
    });
    shape.addEventListener('click', function () { vote(item.label); });
    var title = document.createElementNS(SVG_NS, 'title');
    title.textContent = item.label + ': ' + item.value;
    shape.appendChild(title);
    return shape;
  }

  function drawChart() {
    var svg = el('chart');
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var total = state.items.reduce(function (sum, item) { return sum + item.value; }, 0);
    if (total <= 0) { return; }
    var start = 0;
    state.items.forEach(function (item) {
      if (item.value <= 0) { return; }
      var end = start + item.value / total;
      svg.appendChild(slice(item, start, end));
      start = end;
    });
  }

  function drawCounts() {
    var list = el('counts');
    while (list.firstChild) { list.removeChild(list.firstChild); }
    state.items.forEach(function (item) {
      var row = document.createElement('li');
      row.setAttribute('data-label', item.label);
      var swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = item.color;
      var label = document.createElement('span');
      label.className = 'label';
      label.textContent = item.label;
      var count = document.createElement('span');
      count.className = 'count';
      count.textContent = String(item.value);
      row.appendChild(swatch);
      row.appendChild(label);
      row.appendChild(count);
      row.addEventListener('click', function () { vote(item.label); });
      list.appendChild(row);
    });
  }

  function draw() {
    drawChart();
    drawCounts();
  }

  // Data ---------------------------------------------------------------------------------------

  function loadData() {
    return getJson(api('data')).then(function (items) {
      state.items = items;
      draw();
    });
  }

  function pollCounts() {
    getJson(api('data?countsOnly')).then(function (counts) {
      var labels = Object.keys(counts).sort().join(',');
      var known = state.items.map(function (item) { return item.label; }).sort().join(',');
      if (labels !== known) { return loadData(); }  // a colour was added or removed
      state.items.forEach(function (item) { item.value = counts[item.label]; });
      draw();
    }).catch(function (error) { log('Refreshing counts failed: ' + error.message, true); });
  }

  function pollConfig() {
    getJson(configUrl()).then(function (config) {
      if (config && config.version && config.version !== state.version) {
        log('New version ' + config.version + ' detected! Reloading.');
        window.location.reload();
      }
    }).catch(function () { /* a deploy in progress; the next poll will tell */ });
  }

  function vote(label) {
    getJson(api('increment?color=' + encodeURIComponent(label))).then(function (answer) {
      state.items.forEach(function (item) {
        if (item.label === label) { item.value = answer.count; }
      });
      draw();
      log('Incremented ' + label + ', new count is ' + answer.count);
    }).catch(function (error) { log('Vote for ' + label + ' failed: ' + error.message, true); });
  }

  function start() {
    getJson(configUrl()).then(function (config) {
      state.version = config.version;
      state.apiBaseurl = config.apiBaseurl || '';
      el('version').textContent = config.version;
      log('Build version is ' + config.version);
      return loadData();
    }).catch(function (error) {
      log('Start-up failed: ' + error.message, true);
    }).finally(function () {
      setInterval(pollCounts, COUNTS_EVERY_MS);
      setInterval(pollConfig, CONFIG_EVERY_MS);
    });
  }

  start();
}());
