// The nimbus web app: log in or sign up, then todos, the message board and (administrators)
// the user list. Every piece of data reaches the page through textContent, never as HTML.

import {
  ApiError,
  SessionEnded,
  hasSession,
  logIn,
  logOut,
  nextPage,
  onSessionEnd,
  refresh,
  request,
} from "./api.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["todos", "messages", "users"];
const STATES = { unstarted: "Unstarted", started: "Started", completed: "Completed" };
const PAGE = { todos: 20, messages: 20, users: 50 };
const CONTAINERS = { todos: "todo-list", messages: "message-list", users: "user-rows" };

let me = null; // the signed-in user (GET /users/me)
let isAdmin = false;
const todos = new Map(); // uid -> the todo as last seen, for its version (If-Match)
const lists = Object.fromEntries(VIEWS.map((view) => [view, { next: null, serial: 0 }]));

// An element with attributes, listeners (on...) and children; strings become text nodes.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value !== null && value !== undefined) {
      node.setAttribute(key, String(value));
    }
  }
  node.append(...children);
  return node;
}

function announce(text) {
  $("status").textContent = text;
}

function showError(id, error) {
  if (error instanceof SessionEnded) return;
  if (!(error instanceof ApiError)) console.error(error);
  $(id).textContent = error instanceof ApiError ? error.message : "Something went wrong; try again";
}

function clearErrors() {
  for (const node of document.querySelectorAll(".error")) node.textContent = "";
}

// Runs `task` with the form's buttons disabled, so that one click sends one request.
async function busy(form, task) {
  const buttons = [...form.querySelectorAll("button")];
  form.setAttribute("aria-busy", "true");
  for (const button of buttons) button.disabled = true;
  try {
    return await task();
  } finally {
    form.removeAttribute("aria-busy");
    for (const button of buttons) button.disabled = false;
  }
}

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// Views

function show(name) {
  for (const view of ["auth", ...VIEWS]) $(`view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.hash === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route({ focus = false } = {}) {
  if (!me) {
    show("auth");
    return;
  }
  const wanted = location.hash.slice(1);
  const view = VIEWS.includes(wanted) && (wanted !== "users" || isAdmin) ? wanted : "todos";
  show(view);
  clearErrors();
  LOADERS[view]();
  if (focus) $(`${view}-title`).focus();
}

async function enter({ focus = true } = {}) {
  const { data } = await request("GET", "users/me");
  me = data.user;
  const scopes = String(data.claims?.scope ?? "").split(" ");
  isAdmin = me.role === "admin" && scopes.includes("admin");
  $("whoami").replaceChildren(el("span", {}, "Signed in as"), " ", el("span", {}, me.username));
  $("whoami").title = $("whoami").textContent; // in full where a phone cuts it short
  $("auth-notice").textContent = "";
  $("nav").hidden = false;
  $("account").hidden = false;
  $("nav-users").hidden = !isAdmin;
  route({ focus });
}

onSessionEnd((message) => {
  me = null;
  isAdmin = false;
  todos.clear();
  for (const list of Object.values(lists)) {
    list.next = null;
    list.serial += 1; // answers still on their way are dropped
  }
  for (const id of ["todo-list", "message-list", "user-rows", "whoami", "status"]) {
    $(id).replaceChildren();
  }
  $("whoami").removeAttribute("title");
  for (const id of ["todos-more", "messages-more", "users-more", "nav", "account"]) {
    $(id).hidden = true;
  }
  clearErrors();
  for (const id of ["login-form", "signup-form", "todo-form", "message-form"]) $(id).reset();
  $("todo-filter").value = "";
  $("auth-notice").textContent = message ?? "";
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  show("auth");
  $("login-username").focus();
});

window.addEventListener("hashchange", () => route({ focus: true }));

// Log in, sign up, log out

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors();
  $("auth-notice").textContent = "";
  await busy(form, async () => {
    try {
      await logIn(form.elements.username.value, form.elements.password.value);
      form.reset();
      await enter();
    } catch (error) {
      showError("login-error", error);
      form.elements.password.value = "";
      form.elements.password.focus();
    }
  });
});

$("signup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors();
  $("auth-notice").textContent = "";
  const { username, password, email } = form.elements;
  const body = { username: username.value, password: password.value };
  if (email.value.trim()) body.email = email.value.trim();
  await busy(form, async () => {
    try {
      await request("POST", "users", { auth: false, body });
      await logIn(body.username, body.password);
      form.reset();
      await enter();
      announce(`Welcome, ${body.username}: your account is ready.`);
    } catch (error) {
      showError("signup-error", error);
    }
  });
});

$("logout").addEventListener("click", async () => {
  const button = $("logout");
  button.disabled = true;
  try {
    await logOut("You have logged out.");
  } finally {
    button.disabled = false;
  }
});

// Paged lists: the first page replaces the list, "more" appends the page its Link names.

async function loadPage(view, firstPage, render, { more = false } = {}) {
  const list = lists[view];
  const serial = ++list.serial;
  const button = $(`${view}-more`);
  button.disabled = true;
  $(`${view}-error`).textContent = "";
  try {
    const response = await request("GET", more && list.next ? list.next : firstPage(), {
      auth: view !== "messages",
    });
    if (serial !== list.serial) return;
    if (!more && view === "todos") todos.clear();
    const items = response.data.map(render);
    const container = $(CONTAINERS[view]);
    if (more) container.append(...items);
    else container.replaceChildren(...items);
    list.next = nextPage(response.headers);
    button.hidden = !list.next;
    if (more && items.length) items[0].focus();
    updateEmpty(view);
  } catch (error) {
    if (serial === list.serial) showError(`${view}-error`, error);
  } finally {
    button.disabled = false;
  }
}

function updateEmpty(view) {
  const empty = $(`${view}-empty`);
  if (empty) empty.hidden = $(CONTAINERS[view]).children.length > 0;
}

// Todos

function todosPage() {
  const params = new URLSearchParams({ limit: PAGE.todos });
  const state = $("todo-filter").value;
  if (state) params.set("state", state);
  return `todos?${params}`;
}

function loadTodos(options) {
  return loadPage("todos", todosPage, todoItem, options);
}

function todoItem(todo) {
  todos.set(todo.uid, todo);
  const item = el("li", { "data-uid": todo.uid, tabindex: "-1" });
  renderTodo(item, todo);
  return item;
}

function renderTodo(item, todo) {
  item.className = `todo state-${todo.state}`;
  const selectId = `state-${todo.uid}`;
  const select = el(
    "select",
    { id: selectId, onchange: () => changeTodo(item, { state: select.value }, "select") },
    ...Object.entries(STATES).map(([value, label]) =>
      el("option", { value, selected: value === todo.state }, label),
    ),
  );
  item.replaceChildren(
    el("p", { class: "todo-text" }, todo.description),
    el(
      "div",
      { class: "todo-actions" },
      el("label", { class: "visually-hidden", for: selectId }, `State of “${todo.description}”`),
      select,
      el(
        "button",
        {
          type: "button",
          class: "secondary edit",
          "aria-label": `Edit “${todo.description}”`,
          onclick: () => editTodo(item),
        },
        "Edit",
      ),
      el(
        "button",
        {
          type: "button",
          class: "danger delete",
          "aria-label": `Delete “${todo.description}”`,
          onclick: () => deleteTodo(item),
        },
        "Delete",
      ),
    ),
  );
}

// A 412 means someone else changed the todo since this page read it; a 404, that it is gone.
async function reloadAfter(error) {
  if (!(error instanceof ApiError) || (error.status !== 412 && error.status !== 404)) {
    showError("todos-error", error);
    return;
  }
  await loadTodos();
  $("todos-error").textContent =
    error.status === 412
      ? "This todo was changed elsewhere; the list has been reloaded."
      : "This todo no longer exists; the list has been reloaded.";
}

async function changeTodo(item, changes, focusAfter) {
  const todo = todos.get(item.dataset.uid);
  if (!todo) return false;
  $("todos-error").textContent = "";
  try {
    const { data } = await request("PATCH", `todos/${encodeURIComponent(todo.uid)}`, {
      body: changes,
      headers: { "If-Match": `"${todo.version}"` },
    });
    todos.set(data.uid, data);
    const filter = $("todo-filter").value;
    if (filter && data.state !== filter) {
      item.remove();
      todos.delete(data.uid);
      updateEmpty("todos");
      announce(`“${data.description}” moved to ${STATES[data.state].toLowerCase()}.`);
      $("todos-title").focus();
    } else {
      renderTodo(item, data);
      announce(
        changes.state
          ? `“${data.description}” is now ${STATES[data.state].toLowerCase()}.`
          : `Saved “${data.description}”.`,
      );
      item.querySelector(focusAfter)?.focus();
    }
    return true;
  } catch (error) {
    // A refused state change puts the select back; a refused edit keeps the form and its text.
    if (focusAfter === "select" && item.isConnected) {
      renderTodo(item, todo);
      item.querySelector("select").focus();
    }
    await reloadAfter(error);
    return false;
  }
}

function editTodo(item) {
  const todo = todos.get(item.dataset.uid);
  const inputId = `edit-${todo.uid}`;
  const input = el("input", {
    id: inputId,
    name: "description",
    value: todo.description,
    required: true,
    maxlength: 1000,
    autocomplete: "off",
  });
  const cancel = () => {
    renderTodo(item, todos.get(todo.uid) ?? todo);
    item.querySelector(".edit")?.focus();
  };
  const form = el(
    "form",
    {
      class: "edit-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const description = input.value.trim();
        if (description === todo.description) {
          cancel();
          return;
        }
        await busy(form, () => changeTodo(item, { description }, ".edit"));
      },
    },
    el("label", { for: inputId }, "Description"),
    input,
    el(
      "div",
      { class: "row" },
      el("button", { type: "submit" }, "Save"),
      el("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel"),
    ),
  );
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancel();
  });
  item.replaceChildren(form);
  input.focus();
  input.select();
}

async function deleteTodo(item) {
  const todo = todos.get(item.dataset.uid);
  if (!todo) return;
  $("todos-error").textContent = "";
  try {
    await request("DELETE", `todos/${encodeURIComponent(todo.uid)}`, {
      headers: { "If-Match": `"${todo.version}"` },
    });
    const neighbour = item.nextElementSibling ?? item.previousElementSibling;
    item.remove();
    todos.delete(todo.uid);
    updateEmpty("todos");
    announce(`Deleted “${todo.description}”.`);
    (neighbour?.querySelector("select") ?? $("todo-description")).focus();
  } catch (error) {
    await reloadAfter(error);
  }
}

$("todo-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const input = $("todo-description");
  const description = input.value.trim();
  if (!description) return;
  $("todos-error").textContent = "";
  await busy(form, async () => {
    try {
      const { data } = await request("POST", "todos", { body: { description } });
      input.value = "";
      const filter = $("todo-filter").value;
      if (!filter || filter === data.state) $("todo-list").prepend(todoItem(data));
      updateEmpty("todos");
      announce(`Added “${data.description}”.`);
    } catch (error) {
      showError("todos-error", error);
    }
  });
  input.focus();
});

$("todo-filter").addEventListener("change", () => loadTodos());
$("todos-more").addEventListener("click", () => loadTodos({ more: true }));

// Messages

function messageItem(message) {
  return el(
    "li",
    { class: "message", tabindex: "-1" },
    el(
      "p",
      { class: "meta" },
      el("span", { class: "author" }, message.author),
      " ",
      el("time", { datetime: message.created_at }, formatTime(message.created_at)),
    ),
    el("p", { class: "message-text" }, message.text),
  );
}

function loadMessages(options) {
  return loadPage("messages", () => `messages?limit=${PAGE.messages}`, messageItem, options);
}

$("message-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const input = $("message-text");
  const text = input.value; // kept exactly as written
  $("messages-error").textContent = "";
  if (!/\S/.test(text)) {
    $("messages-error").textContent = "Write something first.";
    input.focus();
    return;
  }
  await busy(form, async () => {
    try {
      const { data } = await request("POST", "messages", { body: { text } });
      input.value = "";
      $("message-list").prepend(messageItem(data));
      updateEmpty("messages");
      announce("Message posted.");
    } catch (error) {
      showError("messages-error", error);
    }
  });
  input.focus();
});

$("message-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    $("message-form").requestSubmit();
  }
});
$("messages-more").addEventListener("click", () => loadMessages({ more: true }));

// Users (administrators)

// Each cell names its column too: a phone stacks a user's cells as a card, the name beside
// each value (hidden from screen readers, which have the column headers).
function userCell(column, ...value) {
  return el(
    "td",
    { role: "cell" },
    el("span", { class: "cell-label", "aria-hidden": "true" }, column),
    el("span", { class: "cell-value" }, ...value),
  );
}

// A long username or email wraps after its dots, @ and the like rather than mid-word.
function breakable(text) {
  const parts = String(text).match(/[^.@_+]+[.@_+]*|[.@_+]+/g) ?? [];
  return parts.flatMap((part, index) => (index ? [el("wbr"), part] : [part]));
}

function userRow(user) {
  const dash = "—";
  return el(
    "tr",
    { role: "row", tabindex: "-1" },
    userCell("Username", ...breakable(user.username)),
    userCell("Name", user.name ?? dash),
    userCell("Email", ...(user.email ? breakable(user.email) : [dash])),
    userCell("Role", user.role),
    userCell("Joined", el("time", { datetime: user.created_at }, formatTime(user.created_at))),
  );
}

function loadUsers(options) {
  return loadPage("users", () => `users?limit=${PAGE.users}`, userRow, options);
}

$("users-more").addEventListener("click", () => loadUsers({ more: true }));

const LOADERS = { todos: loadTodos, messages: loadMessages, users: loadUsers };

// Start: a refresh token kept by this tab resumes its session.

async function start() {
  if (!hasSession()) {
    show("auth");
    return;
  }
  try {
    await refresh();
    await enter({ focus: false });
  } catch (error) {
    if (error instanceof SessionEnded) return; // the login view already says so
    show("auth");
    showError("login-error", error);
  }
}

start();
