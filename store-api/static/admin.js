// The back office: orders, widgets, customers and application users, through the JSON API.
//
// Plain ES module, no build step, served from the binary. Views are chosen by the location's
// hash (`#/orders?status=Cleared`), rendered with dom.js (no HTML strings), and every API error
// is shown in words with its code. The API decides what each role may do; ROLES below only keeps
// controls away from people who would get a 403 for using them.

import {ApiError, call, idPath, query, session as storedSession} from './api.js';
import {fields, h, imageUrl, money, parseMoney, replace, twoStepButton, when} from './dom.js';

/** What each role may change (README: "Roles"). Everyone signed in may read. */
const ROLES = {
  admin: {orders: true, widgets: true, customers: true, users: true},
  developer: {orders: true, widgets: false, customers: true, users: false},
  customer: {orders: false, widgets: false, customers: false, users: false},
};

/** Words for the codes people meet here; the API's own message and the code follow. */
const EXPLAIN = {
  widget_has_orders:
    'Orders refer to this widget, and orders keep their history, so it cannot be deleted. Set its stock to 0 to stop selling it.',
  insufficient_stock: 'There are not enough units in stock for this order.',
  amount_mismatch: 'The price changed since this page was loaded; reload and try again.',
  invalid_status: 'Only cleared orders can be refunded or cancelled.',
  forbidden: 'Your role does not allow this.',
  invalid_credentials: 'Unknown e-mail or wrong password.',
  too_many_attempts: 'Too many failed sign-ins; wait a while before trying again.',
  duplicate: 'Something with this value exists already.',
  own_account: 'You cannot delete your own account; another admin can.',
  own_role: 'You cannot take away your own admin role; another admin can.',
  database_permission_denied: 'This store runs with a database login that may not do this.',
  database_unavailable: 'The database is unavailable right now; try again shortly.',
  database_busy: 'The store is busy; try again shortly.',
  busy: 'The store is busy; try again shortly.',
  timeout: 'The store took too long to answer; try again.',
  missing_token: 'Please sign in.',
  invalid_token: 'Your session is no longer valid; please sign in again.',
  token_expired: 'Your session has ended; please sign in again.',
  not_found: 'It does not exist (any more).',
  network_error: 'The store could not be reached.',
  invalid_input: 'The form is not filled in correctly.',
};

const PAGE_SIZE = 20;

const app = document.getElementById('app');
const messages = document.getElementById('messages');
let current = storedSession.load();

// ---------------------------------------------------------------------------------------------
// Messages

function describe(error) {
  if (!(error instanceof ApiError)) {
    return `Unexpected error in the back office: ${error?.message ?? error} (code client_error)`;
  }
  const explained = EXPLAIN[error.code];
  const words = explained && error.message ? `${explained} The store says: “${error.message}”` : explained || error.message;
  const where = [`code ${error.code}`];
  if (error.status) where.push(`HTTP ${error.status}`);
  if (error.field) where.push(`field ${error.field}`);
  if (error.requestId) where.push(`request ${error.requestId}`);
  return `${words} (${where.join(', ')})`;
}

function showError(error) {
  const code = error instanceof ApiError ? error.code : 'client_error';
  replace(messages, h('div', {class: 'error', role: 'alert', 'data-code': code}, describe(error)));
}

function showNote(text) {
  replace(messages, h('div', {class: 'note', role: 'status'}, text));
}

/** A form that cannot be sent as filled in: shown like an API error, with a code of its own. */
function invalidInput(field, message) {
  return new ApiError(0, 'invalid_input', message, null, field);
}

/** Shows the error; a token the API no longer accepts ends the session here too. */
function fail(error) {
  if (error instanceof ApiError && error.signedOut) forgetSession();
  showError(error);
}

// ---------------------------------------------------------------------------------------------
// Session

function api(method, path, body) {
  return call(method, path, body, current?.token);
}

function forgetSession() {
  current = null;
  storedSession.clear();
  renderSignIn();
}

function renderSignIn() {
  const submit = h('button', {type: 'submit'}, 'Sign in');
  const form = h(
    'form',
    {class: 'stack', id: 'sign-in', method: 'post', action: '#'},
    h('label', {}, 'E-mail', h('input', {name: 'email', type: 'email', autocomplete: 'username', required: true})),
    h('label', {}, 'Password', h('input', {name: 'password', type: 'password', autocomplete: 'current-password', required: true})),
    h('div', {}, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const {email, password} = fields(form);
    submit.disabled = true;
    try {
      const answer = await call('POST', '/api/authenticate', {email, password});
      current = {token: answer.token, expires_at: answer.expires_at, user: answer.user};
      storedSession.save(current);
      replace(messages);
      render();
    } catch (error) {
      showError(error);
    } finally {
      submit.disabled = false;
    }
  });
  replace(app, h('section', {class: 'panel', 'data-view': 'sign-in'}, h('h1', {}, 'Staff sign-in'), form));
}

async function signOut() {
  const token = current?.token;
  forgetSession();
  if (!token) return;
  try {
    await call('POST', '/api/logout', undefined, token);
    showNote('Signed out.');
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Navigation

const VIEWS = {orders: ordersView, widgets: widgetsView, customers: customersView, users: usersView};

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [name, search = ''] = hash.split('?', 2);
  return {name: Object.hasOwn(VIEWS, name) ? name : 'orders', params: new URLSearchParams(search)};
}

function link(name, params = {}) {
  return `#/${name}${query(params)}`;
}

/** Re-renders the current view (after a change, or when the hash changes). */
async function render() {
  if (!current) {
    renderSignIn();
    return;
  }
  const {name, params} = route();
  const can = ROLES[current.user.role] ?? ROLES.customer;
  const body = h('section', {class: 'view', 'data-view': name}, h('p', {class: 'loading'}, 'Loading…'));
  replace(app, toolbar(name, can), body);
  try {
    await VIEWS[name](body, params, can);
  } catch (error) {
    replace(body);
    fail(error);
  }
}

function toolbar(active, can) {
  const tabs = [
    ['orders', 'Orders'],
    ['widgets', 'Widgets'],
    ['customers', 'Customers'],
  ];
  // Only admins may list users: the others would only ever see a 403 there.
  if (can.users) tabs.push(['users', 'Users']);
  const user = current.user;
  return h(
    'div',
    {class: 'toolbar'},
    h(
      'nav',
      {class: 'tabs', 'aria-label': 'Back office'},
      tabs.map(([name, label]) => h('a', {href: link(name), 'data-tab': name, 'aria-current': name === active ? 'page' : null}, label)),
    ),
    h(
      'div',
      {class: 'who'},
      h('span', {id: 'signed-in-as', 'data-role': user.role}, `${user.first_name} ${user.last_name} (${user.role})`),
      h('button', {type: 'button', class: 'secondary', id: 'sign-out', on: {click: signOut}}, 'Sign out'),
    ),
  );
}

/** "First page" and "Next page" links of a cursor-paged list. */
function pager(name, params, next) {
  const here = Object.fromEntries(params);
  delete here.after;
  return h(
    'nav',
    {class: 'pager', 'aria-label': 'Pages'},
    params.get('after') ? h('a', {href: link(name, here), rel: 'first'}, 'First page') : null,
    next ? h('a', {href: link(name, {...here, after: next}), rel: 'next'}, 'Next page') : null,
  );
}

function table(headings, rows, attributes = {}) {
  return h(
    'div',
    {class: 'table-wrap'},
    h(
      'table',
      attributes,
      h('thead', {}, h('tr', {}, headings.map(([label, cls]) => h('th', {class: cls}, label)))),
      h('tbody', {}, rows),
    ),
  );
}

function person(record) {
  return `${record.first_name} ${record.last_name}`;
}

/** The records behind `ids`, fetched once each; a failed look-up leaves the id shown. */
// One request for a page's worth of ids (`?ids=`), not one per id. What cannot be read shows as
// its id.
async function lookup(kind, ids) {
  const found = new Map();
  const wanted = [...new Set(ids)];
  if (wanted.length === 0) return found;
  try {
    const page = await api('GET', `/api/${kind}${query({ids: wanted.join(','), limit: wanted.length})}`);
    for (const item of page.items) found.set(item.id, item);
  } catch {
    // The rows show their ids instead.
  }
  return found;
}

let statuses = null;

async function orderStatuses() {
  if (statuses === null) statuses = (await api('GET', '/api/statuses')).items.map((status) => status.name);
  return statuses;
}

// ---------------------------------------------------------------------------------------------
// Orders

async function ordersView(body, params, can) {
  const status = params.get('status') ?? '';
  const customerId = params.get('customer_id') ?? '';
  const [names, page] = await Promise.all([
    orderStatuses(),
    api('GET', `/api/orders${query({status, customer_id: customerId, after: params.get('after'), limit: PAGE_SIZE})}`),
  ]);
  const [widgets, customers] = await Promise.all([
    lookup('widgets', page.items.map((order) => order.widget_id)),
    lookup('customers', page.items.map((order) => order.customer_id)),
  ]);

  const filter = h(
    'select',
    {id: 'status-filter', name: 'status', 'aria-label': 'Status'},
    h('option', {value: ''}, 'All statuses'),
    names.map((name) => h('option', {value: name, selected: name.toLowerCase() === status.toLowerCase()}, name)),
  );
  filter.addEventListener('change', () => {
    location.hash = link('orders', {status: filter.value, customer_id: customerId});
  });

  const rows = page.items.map((order) => {
    const customer = customers.get(order.customer_id);
    const widget = widgets.get(order.widget_id);
    const actions = [];
    if (can.orders && order.status === 'Cleared') {
      actions.push(
        twoStepButton('Refund', 'Really refund?', () => changeOrder(order, 'refund', 'refunded')),
        twoStepButton('Cancel', 'Really cancel?', () => changeOrder(order, 'cancel', 'cancelled; its units are back in stock')),
      );
    }
    return h(
      'tr',
      {'data-order-id': order.id},
      h('td', {class: 'num'}, `#${order.id}`),
      h('td', {}, when(order.created_at)),
      h('td', {}, h('span', {class: `status status-${order.status}`, 'data-status': order.status}, order.status)),
      h(
        'td',
        {class: 'customer'},
        customer ? [person(customer), h('br'), h('span', {class: 'muted'}, customer.email)] : `customer ${order.customer_id}`,
      ),
      h('td', {class: 'widget'}, widget ? widget.name : `widget ${order.widget_id}`),
      h('td', {class: 'num'}, order.quantity),
      h('td', {class: 'num'}, money(order.amount_cents)),
      h('td', {}, h('div', {class: 'actions'}, actions)),
    );
  });

  replace(
    body,
    h(
      'div',
      {class: 'intro'},
      h('h1', {}, 'Orders'),
      h('p', {class: 'count'}, `${page.total} ${page.total === 1 ? 'order' : 'orders'}, newest first`),
    ),
    h('p', {}, filter, customerId ? [' for customer ', `#${customerId}`, ' ', h('a', {href: link('orders', {status})}, '(all customers)')] : null),
    page.items.length
      ? table(
          [['Order', 'num'], ['Placed'], ['Status'], ['Customer'], ['Widget'], ['Qty', 'num'], ['Amount', 'num'], ['']],
          rows,
          {id: 'orders'},
        )
      : h('p', {class: 'empty'}, 'No orders here.'),
    pager('orders', params, page.next),
    can.orders ? await placeOrderPanel() : null,
  );
}

async function changeOrder(order, action, done) {
  try {
    await api('POST', `/api/orders/${idPath(order.id)}/${action}`);
    showNote(`Order #${order.id} ${done}.`);
    await render();
  } catch (error) {
    fail(error);
  }
}

async function placeOrderPanel() {
  const catalogue = await api('GET', `/api/widgets${query({limit: 100})}`);
  const byId = new Map(catalogue.items.map((widget) => [String(widget.id), widget]));
  const submit = h('button', {type: 'submit'}, 'Place order');
  const form = h(
    'form',
    {class: 'stack', id: 'place-order', method: 'post', action: '#'},
    h(
      'label',
      {},
      'Widget',
      h(
        'select',
        {name: 'widget_id', required: true},
        catalogue.items.map((widget) =>
          h('option', {value: widget.id}, `${widget.name} (${money(widget.price_cents)}, ${widget.inventory_level} in stock)`),
        ),
      ),
    ),
    h('label', {}, 'Quantity', h('input', {name: 'quantity', type: 'number', min: 1, max: 1000, value: 1, required: true})),
    h('label', {}, "Customer's e-mail", h('input', {name: 'email', type: 'email', required: true})),
    h('label', {}, 'First name', h('input', {name: 'first_name', required: true})),
    h('label', {}, 'Last name', h('input', {name: 'last_name', required: true})),
    h('label', {}, 'Currency', h('input', {name: 'currency', value: 'EUR', maxlength: 3, required: true})),
    h('div', {}, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = fields(form);
    const widget = byId.get(values.widget_id);
    const quantity = Number(values.quantity);
    submit.disabled = true;
    try {
      if (!widget) throw invalidInput('widget_id', 'choose a widget');
      const order = await api('POST', '/api/orders', {
        widget_id: widget.id,
        quantity,
        customer: {email: values.email, first_name: values.first_name, last_name: values.last_name},
        // The price this page showed: the API answers 409 amount_mismatch if it has changed.
        payment: {currency: values.currency.toUpperCase(), amount_cents: widget.price_cents * quantity, payment_method: 'back office'},
      });
      showNote(`Order #${order.id} placed: ${order.quantity} × ${widget.name} for ${money(order.amount_cents)} ${values.currency.toUpperCase()}.`);
      await render();
    } catch (error) {
      fail(error);
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', {class: 'panel'}, h('h2', {}, 'Place an order'), form);
}

// ---------------------------------------------------------------------------------------------
// Widgets

async function widgetsView(body, params, can) {
  const page = await api('GET', `/api/widgets${query({after: params.get('after'), limit: PAGE_SIZE})}`);
  const editor = h('section', {class: 'panel', id: 'widget-editor'});
  const showAdd = () => replace(editor, h('h2', {}, 'Add a widget'), widgetForm(null, showAdd));

  const rows = page.items.map((widget) => {
    const actions = [];
    if (can.widgets) {
      const units = h('input', {type: 'number', min: 1, max: 1000000, value: 10, class: 'restock-units', 'aria-label': `Units of ${widget.name} to add`});
      actions.push(
        h(
          'button',
          {
            type: 'button',
            class: 'secondary edit',
            on: {
              click: () => {
                replace(editor, h('h2', {}, `Edit widget #${widget.id}`), widgetForm(widget, showAdd));
                editor.scrollIntoView({block: 'nearest'});
              },
            },
          },
          'Edit',
        ),
        units,
        h('button', {type: 'button', class: 'secondary restock', on: {click: () => restock(widget, units.value)}}, 'Restock'),
        twoStepButton('Delete', 'Really delete?', () => deleteWidget(widget)),
      );
    }
    const src = imageUrl(widget.image);
    return h(
      'tr',
      {'data-widget-id': widget.id},
      h('td', {class: 'num'}, widget.id),
      h('td', {}, src ? h('img', {class: 'thumb', src, alt: ''}) : null),
      h('td', {class: 'name'}, h('a', {href: `/widgets/${idPath(widget.id)}`}, widget.name)),
      h('td', {class: 'num'}, money(widget.price_cents)),
      h('td', {class: 'num stock-level'}, widget.inventory_level),
      h('td', {}, h('div', {class: 'actions'}, actions)),
    );
  });

  if (can.widgets) showAdd();
  replace(
    body,
    h('div', {class: 'intro'}, h('h1', {}, 'Widgets'), h('p', {class: 'count'}, `${page.total} in the catalogue`)),
    page.items.length
      ? table([['ID', 'num'], [''], ['Name'], ['Price', 'num'], ['Stock', 'num'], ['']], rows, {id: 'widgets'})
      : h('p', {class: 'empty'}, 'No widgets here.'),
    pager('widgets', params, page.next),
    can.widgets ? editor : null,
  );
}

/** The add form (widget null) or the edit form of `widget`, which sends only what changed. */
function widgetForm(widget, onDone) {
  const submit = h('button', {type: 'submit'}, widget ? 'Save' : 'Add widget');
  const form = h(
    'form',
    {class: 'stack', id: widget ? 'edit-widget' : 'add-widget', method: 'post', action: '#'},
    h('label', {}, 'Name', h('input', {name: 'name', required: true, maxlength: 200, value: widget?.name ?? ''})),
    h('label', {}, 'Description', h('textarea', {name: 'description', maxlength: 10000, value: widget?.description ?? ''})),
    h('label', {}, 'Price', h('input', {name: 'price', inputmode: 'decimal', required: true, placeholder: '12.50', value: widget ? money(widget.price_cents) : ''})),
    h('label', {}, 'Stock', h('input', {name: 'inventory_level', type: 'number', min: 0, required: true, value: widget?.inventory_level ?? 0})),
    h('label', {}, 'Image address (https://… or /path)', h('input', {name: 'image', value: widget?.image ?? ''})),
    h('div', {}, submit, ' ', widget ? h('button', {type: 'button', class: 'secondary', on: {click: onDone}}, 'Cancel') : null),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = fields(form);
    submit.disabled = true;
    try {
      const price = parseMoney(values.price);
      if (price === null) throw invalidInput('price', 'price: give an amount such as 12.50');
      if (values.image && imageUrl(values.image) === null) {
        throw invalidInput('image', 'image: give an http(s) address or a path on this site; the storefront shows no other');
      }
      const wanted = {
        name: values.name,
        description: values.description,
        price_cents: price,
        inventory_level: Number(values.inventory_level),
        image: values.image,
      };
      if (widget) {
        const changes = Object.fromEntries(Object.entries(wanted).filter(([key, value]) => value !== widget[key]));
        const saved = await api('PATCH', `/api/widgets/${idPath(widget.id)}`, changes);
        showNote(`Widget #${saved.id} "${saved.name}" saved.`);
      } else {
        const created = await api('POST', '/api/widgets', wanted);
        showNote(`Widget #${created.id} "${created.name}" added.`);
      }
      await render();
    } catch (error) {
      fail(error);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** Adds units to the stock as the database has it: one atomic change, so orders placed meanwhile are kept. */
async function restock(widget, unitsText) {
  try {
    const units = Number(unitsText);
    if (!Number.isInteger(units) || units < 1) throw invalidInput('units', 'restock: give a whole number of units, at least 1');
    const saved = await api('PATCH', `/api/widgets/${idPath(widget.id)}`, {inventory_delta: units});
    showNote(`${saved.name}: ${units} added, stock now ${saved.inventory_level}.`);
    await render();
  } catch (error) {
    fail(error);
  }
}

async function deleteWidget(widget) {
  try {
    await api('DELETE', `/api/widgets/${idPath(widget.id)}`);
    showNote(`Widget #${widget.id} "${widget.name}" deleted.`);
    await render();
  } catch (error) {
    fail(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Customers

async function customersView(body, params, can) {
  const q = params.get('q') ?? '';
  const page = await api('GET', `/api/customers${query({q, after: params.get('after'), limit: PAGE_SIZE})}`);
  const search = h('input', {name: 'q', type: 'search', value: q, 'aria-label': 'Name or e-mail'});
  const searchForm = h('form', {class: 'row', id: 'customer-search', method: 'get', action: '#'}, search, h('button', {type: 'submit', class: 'secondary'}, 'Search'));
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = link('customers', {q: search.value.trim()});
  });
  const rows = page.items.map((customer) =>
    h(
      'tr',
      {'data-customer-id': customer.id},
      h('td', {class: 'num'}, customer.id),
      h('td', {}, person(customer)),
      h('td', {}, customer.email),
      h('td', {}, when(customer.created_at)),
      h('td', {}, h('a', {href: link('orders', {customer_id: customer.id})}, 'Orders')),
    ),
  );
  replace(
    body,
    h('div', {class: 'intro'}, h('h1', {}, 'Customers'), h('p', {class: 'count'}, `${page.total} ${page.total === 1 ? 'customer' : 'customers'}`)),
    searchForm,
    page.items.length
      ? table([['ID', 'num'], ['Name'], ['E-mail'], ['Since'], ['']], rows, {id: 'customers'})
      : h('p', {class: 'empty'}, 'No customers here.'),
    pager('customers', params, page.next),
    can.customers ? addCustomerPanel() : null,
  );
}

function addCustomerPanel() {
  const submit = h('button', {type: 'submit'}, 'Add customer');
  const form = h(
    'form',
    {class: 'stack', id: 'add-customer', method: 'post', action: '#'},
    h('label', {}, 'First name', h('input', {name: 'first_name', required: true})),
    h('label', {}, 'Last name', h('input', {name: 'last_name', required: true})),
    h('label', {}, 'E-mail', h('input', {name: 'email', type: 'email', required: true})),
    h('div', {}, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const customer = await api('POST', '/api/customers', fields(form));
      showNote(`Customer #${customer.id} ${person(customer)} added.`);
      await render();
    } catch (error) {
      fail(error);
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', {class: 'panel'}, h('h2', {}, 'Add a customer'), form);
}

// ---------------------------------------------------------------------------------------------
// Application users (admins only: the API answers 403 to anyone else, shown as such)

async function usersView(body, params) {
  const page = await api('GET', `/api/users${query({after: params.get('after'), limit: PAGE_SIZE})}`);
  const rows = page.items.map((user) => {
    const role = h(
      'select',
      {'aria-label': `Role of ${user.email}`, class: 'role'},
      Object.keys(ROLES).map((name) => h('option', {value: name, selected: name === user.role}, name)),
    );
    role.addEventListener('change', async () => {
      try {
        const saved = await api('PATCH', `/api/users/${idPath(user.id)}`, {role: role.value});
        showNote(`${saved.email} is now ${saved.role}.`);
        await render();
      } catch (error) {
        role.value = user.role;
        fail(error);
      }
    });
    const remove = twoStepButton('Delete', 'Really delete?', async () => {
      try {
        await api('DELETE', `/api/users/${idPath(user.id)}`);
        showNote(`User ${user.email} deleted.`);
        await render();
      } catch (error) {
        fail(error);
      }
    });
    return h(
      'tr',
      {'data-user-id': user.id},
      h('td', {class: 'num'}, user.id),
      h('td', {}, person(user)),
      h('td', {}, user.email),
      h('td', {}, role),
      h('td', {}, h('div', {class: 'actions'}, remove)),
    );
  });
  replace(
    body,
    h('div', {class: 'intro'}, h('h1', {}, 'Application users'), h('p', {class: 'count'}, `${page.total} ${page.total === 1 ? 'user' : 'users'}`)),
    table([['ID', 'num'], ['Name'], ['E-mail'], ['Role'], ['']], rows, {id: 'users'}),
    pager('users', params, page.next),
    addUserPanel(),
  );
}

function addUserPanel() {
  const submit = h('button', {type: 'submit'}, 'Add user');
  const form = h(
    'form',
    {class: 'stack', id: 'add-user', method: 'post', action: '#'},
    h('label', {}, 'First name', h('input', {name: 'first_name', required: true})),
    h('label', {}, 'Last name', h('input', {name: 'last_name', required: true})),
    h('label', {}, 'E-mail', h('input', {name: 'email', type: 'email', required: true, autocomplete: 'off'})),
    h('label', {}, 'Role', h('select', {name: 'role'}, Object.keys(ROLES).map((name) => h('option', {value: name}, name)))),
    h('label', {}, 'Password (at least 8 characters)', h('input', {name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password'})),
    h('div', {}, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const user = await api('POST', '/api/users', fields(form));
      showNote(`User ${user.email} (${user.role}) added.`);
      await render();
    } catch (error) {
      fail(error);
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', {class: 'panel'}, h('h2', {}, 'Add a user'), form);
}

// ---------------------------------------------------------------------------------------------

window.addEventListener('hashchange', () => {
  replace(messages);
  render();
});
render();
