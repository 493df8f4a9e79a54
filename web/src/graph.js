// The job graph (cytoscape with the dagre layout, left to right): one node
// per vertex with its operators and parallelism, one edge per input with
// its partitioning (the plan's ship_strategy).
import { operators } from './format.js';

function nodeLabel(node) {
  return `${operators(node.description).join('\n')}\nParallelism: ${node.parallelism}`;
}

/**
 * Draws `plan` (the "plan" object of /jobs/:id/plan) into `container`;
 * onSelect(vertexId) is called when a node is clicked. Returns
 * { cy, setLevels({vertexId: 'ok'|'low'|'high'}), destroy() }.
 */
export function drawGraph(container, plan, onSelect) {
  const elements = [];
  for (const node of plan.nodes) {
    elements.push({ data: { id: node.id, label: nodeLabel(node), level: 'unknown' } });
  }
  for (const node of plan.nodes) {
    for (const input of node.inputs || []) {
      elements.push({
        data: { id: `${input.id}->${node.id}#${input.num}`, source: input.id, target: node.id, label: input.ship_strategy },
      });
    }
  }
  const cy = cytoscape({
    container,
    elements,
    userZoomingEnabled: true,
    wheelSensitivity: 0.3,
    autoungrabify: true,
    style: [
      {
        selector: 'node',
        style: {
          shape: 'round-rectangle',
          label: 'data(label)',
          'text-wrap': 'wrap',
          'text-valign': 'center',
          'font-size': 11,
          'background-color': '#e7f0fa',
          'border-width': 2,
          'border-color': '#1d4e89',
          width: 'label',
          height: 'label',
          padding: '12px',
        },
      },
      { selector: 'node[level = "low"]', style: { 'background-color': '#fff4e6', 'border-color': '#e8590c' } },
      { selector: 'node[level = "high"]', style: { 'background-color': '#fff5f5', 'border-color': '#c92a2a' } },
      { selector: 'node:selected', style: { 'border-width': 4 } },
      {
        selector: 'edge',
        style: {
          width: 1.5,
          'curve-style': 'bezier',
          'target-arrow-shape': 'triangle',
          'line-color': '#8aa1b9',
          'target-arrow-color': '#8aa1b9',
          label: 'data(label)',
          'font-size': 10,
          'text-background-color': '#fbfcfe',
          'text-background-opacity': 1,
        },
      },
    ],
    layout: { name: 'dagre', rankDir: 'LR', nodeSep: 30, rankSep: 90, padding: 20 },
  });
  cy.on('tap', 'node', (event) => onSelect(event.target.id()));
  // What the page shows, readable without the canvas (tests, accessibility).
  container.dataset.nodes = String(cy.nodes().length);
  container.dataset.edges = String(cy.edges().length);
  container.setAttribute('aria-label', `job graph: ${plan.nodes.map((n) => operators(n.description).join(' -> ')).join('; ')}`);
  return {
    cy,
    setLevels(levels) {
      for (const [id, level] of Object.entries(levels)) {
        const node = cy.getElementById(id);
        if (node.nonempty()) node.data('level', level);
      }
    },
    destroy() {
      cy.destroy();
    },
  };
}
