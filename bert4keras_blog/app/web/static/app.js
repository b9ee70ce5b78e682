// The page: plain JavaScript, no build step. The server checks every move
// and keeps no state; this script holds the game (start FEN and moves).
'use strict';

const CELL = 52;
const FILES = 'abcdefghi';
let info = null;           // /api/status
let game = null;           // the last position the server returned
let human = 'red';
let selected = null;       // the square of the piece picked up
let busy = false;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)};
  const response = await fetch(path, options);
  const kind = response.headers.get('Content-Type') || '';
  const data = kind.startsWith('application/json') ? await response.json() : await response.text();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function element(tag, text, attributes) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  Object.entries(attributes || {}).forEach(([k, v]) => node.setAttribute(k, v));
  return node;
}

// ------------------------------------------------------------------- tabs

function showTab() {
  const name = (location.hash || '#chess').slice(1);
  document.querySelectorAll('.tab').forEach(t => t.classList.toggle('active', t.id === name));
  document.querySelectorAll('nav a').forEach(a => a.classList.toggle('active',
    a.dataset.tab === name));
  if (name === 'results') loadResults();
}

function showNotices() {
  const sections = {chess: 'chess', maths: 'maths', titles: 'titles'};
  Object.entries(sections).forEach(([model, section]) => {
    const state = info.models[model];
    const notice = document.querySelector('#' + section + ' .notice');
    notice.hidden = state.ready;
    if (!state.ready) {
      notice.textContent = 'No trained model in ' + state.folder + ' yet. Train it with: ' +
        state.train + ' (then reload this page).';
    }
  });
}

// ------------------------------------------------------------------ board

function xy(square) {
  const file = FILES.indexOf(square[0]);
  const rank = Number(square[1]);
  return human === 'black' ? [8 - file, rank] : [file, 9 - rank];
}

function drawLines() {
  const svg = document.getElementById('lines');
  const half = CELL / 2;
  const at = (x, y) => [half + x * CELL, half + y * CELL];
  let paths = '';
  const line = (x1, y1, x2, y2) => {
    const [a, b] = at(x1, y1);
    const [c, d] = at(x2, y2);
    paths += `<line x1="${a}" y1="${b}" x2="${c}" y2="${d}"/>`;
  };
  for (let y = 0; y < 10; y++) line(0, y, 8, y);
  for (let x = 0; x < 9; x++) {
    if (x === 0 || x === 8) line(x, 0, x, 9);
    else { line(x, 0, x, 4); line(x, 5, x, 9); }
  }
  line(3, 0, 5, 2); line(5, 0, 3, 2); line(3, 7, 5, 9); line(5, 7, 3, 9);
  const [rx, ry] = at(4, 4.5);
  svg.innerHTML = `<g stroke="#6b4f1d" stroke-width="1.5">${paths}</g>` +
    `<text x="${rx}" y="${ry + 7}" text-anchor="middle" font-size="20" fill="#6b4f1d">` +
    '楚 河　　　　漢 界</text>';
}

function pieceSide(letter) {
  return letter === letter.toUpperCase() ? 'red' : 'black';
}

function drawBoard() {
  const board = document.getElementById('board');
  board.querySelectorAll('.cell').forEach(c => c.remove());
  const last = game.last ? [game.last.slice(0, 2), game.last.slice(2)] : [];
  const targets = selected ? game.legal.filter(m => m.startsWith(selected))
    .map(m => m.slice(2)) : [];
  game.board.forEach((row, i) => {
    [...row].forEach((letter, file) => {
      const square = FILES[file] + (9 - i);
      const [x, y] = xy(square);
      const cell = element('div', null, {'data-square': square});
      cell.className = 'cell';
      cell.style.left = x * CELL + 'px';
      cell.style.top = y * CELL + 'px';
      if (last.includes(square)) cell.classList.add('last');
      if (square === selected) cell.classList.add('selected');
      if (targets.includes(square)) cell.classList.add('target');
      if (letter !== '.') {
        const piece = element('div', info.pieces[letter]);
        piece.className = 'piece ' + pieceSide(letter);
        cell.appendChild(piece);
        if (pieceSide(letter) === human) {
          cell.draggable = true;
          cell.addEventListener('dragstart', e => {
            selected = square; e.dataTransfer.setData('text/plain', square);
          });
        }
      }
      cell.addEventListener('click', () => clickSquare(square, letter));
      cell.addEventListener('dragover', e => e.preventDefault());
      cell.addEventListener('drop', e => {
        e.preventDefault();
        const from = e.dataTransfer.getData('text/plain');
        if (from) tryMove(from + square);
      });
      board.appendChild(cell);
    });
  });
}

function drawArrows(candidates) {
  const svg = document.getElementById('arrows');
  const center = s => xy(s).map(v => v * CELL + CELL / 2);
  let shapes = '<defs><marker id="head" markerWidth="6" markerHeight="6" refX="3" refY="3" ' +
    'orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#2a7de1"/></marker></defs>';
  (candidates || []).slice(0, 3).forEach(c => {
    const [x1, y1] = center(c.move.slice(0, 2));
    const [x2, y2] = center(c.move.slice(2));
    const width = 2 + 8 * c.probability;
    shapes += `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#2a7de1" ` +
      `stroke-opacity="0.55" stroke-width="${width}" marker-end="url(#head)"/>`;
  });
  svg.innerHTML = shapes;
}

function describeResult(result) {
  const winner = {'1-0': 'Red wins', '0-1': 'Black wins', '1/2-1/2': 'Draw'}[result.result];
  return 'Game over: ' + winner + ' (' + result.reason + ')';
}

function render(candidates) {
  drawBoard();
  drawArrows(candidates);
  const status = document.getElementById('chess-status');
  status.className = '';
  if (game.result) status.textContent = describeResult(game.result);
  else if (busy) status.textContent = 'The model is thinking…';
  else status.textContent = game.turn === human ? 'Your move (' + human + ')' : 'Model to move';
  const list = document.getElementById('move-list');
  list.replaceChildren(...game.moves.map(m => element('li', m)));
  const box = document.getElementById('candidates');
  box.replaceChildren(...(candidates || []).map(c => element('li',
    c.move + '  ' + (100 * c.probability).toFixed(1) + '%')));
}

function showError(error) {
  const status = document.getElementById('chess-status');
  status.textContent = error.message;
  status.className = 'error';
}

function position() {
  return {fen: game.fen, moves: game.moves};
}

async function modelMove() {
  busy = true; render();
  try {
    const answer = await api('/api/chess/reply', position());
    game = answer; busy = false; render(answer.candidates);
  } catch (error) { busy = false; showError(error); }
}

async function tryMove(move) {
  selected = null;
  if (busy || game.result || !game.legal.includes(move)) { render(); return; }
  try {
    game = await api('/api/chess/move', Object.assign(position(), {move: move}));
    render();
    if (!game.result) await modelMove();
  } catch (error) { render(); showError(error); }
}

function clickSquare(square, letter) {
  if (busy || game.result || game.turn !== human) return;
  if (selected && game.legal.includes(selected + square)) return tryMove(selected + square);
  selected = letter !== '.' && pieceSide(letter) === human ? square : null;
  render();
}

async function newGame() {
  human = document.getElementById('side').value;
  selected = null;
  const fen = document.getElementById('fen').value.trim() || null;
  try {
    game = await api('/api/chess/state', {fen: fen, moves: []});
    render();
    if (!game.result && game.turn !== human) await modelMove();
  } catch (error) { showError(error); }
}

async function undo() {
  if (busy || !game.moves.length) return;
  const moves = game.moves.slice();
  do { moves.pop(); } while (moves.length && sideAfter(moves) !== human);
  selected = null;
  game = await api('/api/chess/state', {fen: game.fen, moves: moves});
  render();
  if (game.turn !== human) await modelMove();
}

function sideAfter(moves) {
  const first = (game.fen || info.start_fen).split(' ')[1] === 'w' ? 'red' : 'black';
  return moves.length % 2 === 0 ? first : (first === 'red' ? 'black' : 'red');
}

async function download() {
  const text = await api('/api/chess/record', position());
  const link = element('a', null, {download: 'game.txt',
    href: URL.createObjectURL(new Blob([text], {type: 'text/plain'}))});
  document.body.appendChild(link); link.click(); link.remove();
}

// ---------------------------------------------------------- maths, titles

function candidateTable(table, heads, rows) {
  table.replaceChildren(element('tr'));
  heads.forEach(h => table.firstChild.appendChild(element('th', h)));
  rows.forEach(cells => {
    const tr = element('tr');
    cells.forEach(c => tr.appendChild(element('td', c)));
    table.appendChild(tr);
  });
}

async function solve() {
  const out = document.getElementById('math-answer');
  out.className = ''; out.textContent = 'solving…';
  try {
    const answer = await api('/api/math', {text: document.getElementById('math-text').value});
    out.textContent = 'x = ' + answer.expression + '   answer: ' +
      (answer.value === null ? 'no value (the expression is not valid)' : answer.value);
    candidateTable(document.getElementById('math-candidates'),
      ['expression', 'log-probability', 'value'],
      answer.candidates.map(c => [c.expression, c.log_probability.toFixed(3),
        c.value === null ? 'invalid' : c.value]));
  } catch (error) { out.className = 'error'; out.textContent = error.message; }
}

async function generateTitle() {
  const out = document.getElementById('title-output');
  out.className = ''; out.textContent = 'generating…';
  try {
    const answer = await api('/api/titles', {text: document.getElementById('title-text').value});
    out.textContent = answer.title;
    candidateTable(document.getElementById('title-candidates'), ['title', 'log-probability'],
      answer.candidates.map(c => [c.title, c.log_probability.toFixed(3)]));
  } catch (error) { out.className = 'error'; out.textContent = error.message; }
}

// ---------------------------------------------------------------- results

async function loadResults() {
  const box = document.getElementById('result-cards');
  const cards = await api('/api/results');
  box.replaceChildren(...cards.map(card => {
    const div = element('div', null, {'data-example': card.example});
    div.className = 'card';
    div.appendChild(element('h3', 'Post ' + card.post + ': ' + card.claim));
    if (card.missing || card.error) {
      div.appendChild(element('p', card.error ||
        'Not run yet. Run it with: ' + card.missing));
      return div;
    }
    div.appendChild(element('p', card.headline + ' = ' + card.value, {class: 'headline'}));
    card.plots.forEach(src => div.appendChild(element('img', null, {src: src, alt: src})));
    const details = element('details');
    details.appendChild(element('summary', 'all figures of the run'));
    const table = element('table');
    card.scalars.forEach(([k, v]) => {
      const tr = element('tr');
      tr.appendChild(element('td', k)); tr.appendChild(element('td', v));
      table.appendChild(tr);
    });
    details.appendChild(table);
    details.appendChild(element('code', card.command));
    div.appendChild(details);
    return div;
  }));
}

// ------------------------------------------------------------------ start

async function start() {
  info = await api('/api/status');
  showNotices();
  drawLines();
  document.getElementById('new-game').addEventListener('click', newGame);
  document.getElementById('undo').addEventListener('click', undo);
  document.getElementById('download').addEventListener('click', download);
  document.getElementById('math-solve').addEventListener('click', solve);
  document.getElementById('title-generate').addEventListener('click', generateTitle);
  window.addEventListener('hashchange', showTab);
  showTab();
  await newGame();
  window.ready = true;  // for the browser tests: the page has its first position
}

start();
