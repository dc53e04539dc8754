import { z } from 'zod';

/** Orion's name rule: ASCII word characters, spaces allowed after the first character, at most 50. */
const name = z
  .string()
  .max(50, 'must be at most 50 characters')
  .regex(/^\w+[\w ]*$/, 'must be letters, digits or underscores, and may contain spaces after the first character');

const token = z.string().min(1).max(128);

export const createLobbyBody = z.object({
  token,
  hostName: name,
  lobbyName: name,
  isPublic: z.boolean(),
  maxMembers: z.number().int().min(1).max(64),
});

export const joinLobbyBody = z.object({
  token,
  peerName: name,
});

export const startMediationBody = z.object({
  token,
});

export const chatPayload = z.object({
  token,
  lobbyId: z.string().max(16),
  message: z.string().min(1).max(250),
});

export const tokenPayload = z.object({
  token,
});

/** Flattens zod issues into short user-facing lines: `field: problem`. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.slice(0, 10).map((issue) => {
    const path = issue.path.map(String).join('.');
    return path ? `${path}: ${issue.message}` : issue.message;
  });
}
